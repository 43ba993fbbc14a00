// The host page's side of the demo. The widget's verdict only unlocks the button (a convenience:
// anyone can forge a `result` event from the console); the account is created by the server, and
// only for a valid, unexpired, unused token that the server itself signed after re-checking the
// same frames (`session` attribute).
const liveness = document.getElementById('liveness');
const submit = document.getElementById('submit');
const hint = document.getElementById('submit-hint');
const form = document.getElementById('signup');
const outcome = document.getElementById('outcome');

let token = null;

liveness.addEventListener('result', (e) => {
  token = e.detail.session?.token ?? null;
  submit.disabled = !e.detail.live;
  hint.textContent = e.detail.live ? 'Liveness confirmed.' : 'The button unlocks after a live result.';
});
liveness.addEventListener('state', (e) => {
  // A new check (or a failed one) locks the form again.
  if (e.detail.state !== 'result') {
    token = null;
    submit.disabled = true;
  }
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  outcome.textContent = 'Creating your account…';
  try {
    const response = await fetch('/demo/signup', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: form.elements.name.value, email: form.elements.email.value, token }),
    });
    const answer = await response.json();
    outcome.dataset.accepted = String(response.ok);
    outcome.textContent = response.ok ? answer.message : `The server refused the signup: ${answer.message}`;
  } catch (error) {
    outcome.dataset.accepted = 'false';
    outcome.textContent = `The server could not be reached: ${error.message}`;
  }
});
