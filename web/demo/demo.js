// The host page's side of the demo: unlock submit only after a live result.
const liveness = document.getElementById('liveness');
const submit = document.getElementById('submit');
const hint = document.getElementById('submit-hint');
const form = document.getElementById('signup');
const outcome = document.getElementById('outcome');

let verdict = null;

liveness.addEventListener('result', (e) => {
  verdict = e.detail;
  submit.disabled = !verdict.live;
  hint.textContent = verdict.live ? 'Liveness confirmed.' : 'The button unlocks after a live result.';
});
liveness.addEventListener('state', (e) => {
  // A new check (or a failed one) locks the form again.
  if (e.detail.state !== 'result') {
    verdict = null;
    submit.disabled = true;
  }
});

form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (!verdict?.live) return;
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  outcome.textContent = `Account created for ${form.elements.name.value} (demo: nothing was sent).`;
});
