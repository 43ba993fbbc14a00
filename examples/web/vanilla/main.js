// The package from npm, no framework: mount() creates the element with its options.
import { mount } from 'liveness-check';

const outcome = document.getElementById('outcome');
window.liveness = mount(document.getElementById('liveness'), {
  model: '/models/default.onnx',
  onResult: (result) => {
    outcome.textContent = result.live ? 'Live person seen.' : 'Not accepted.';
    outcome.dataset.live = String(result.live);
  },
  onError: (error) => {
    outcome.textContent = error.message;
  },
});
