/**
 * The pages' only script (served as a file, loaded by nonce): copy buttons, confirmation
 * dialogs and the expiry date toggle. Everything works without it.
 */
export const SCRIPT = `'use strict';
(function () {
  document.querySelectorAll('button[data-copy-target]').forEach(function (button) {
    var target = document.getElementById(button.getAttribute('data-copy-target'));
    var status = document.getElementById(button.getAttribute('data-copy-status'));
    if (!target || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        if (status) status.textContent = 'Copied to the clipboard.';
      }, function () {
        if (status) status.textContent = 'Copying failed: select the text and copy it.';
      });
    });
  });
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (form.querySelector('input[name="confirm"]')) return;
      if (!window.confirm(form.getAttribute('data-confirm'))) { event.preventDefault(); return; }
      var input = document.createElement('input');
      input.type = 'hidden'; input.name = 'confirm'; input.value = 'yes';
      form.appendChild(input);
    });
  });
  var expiry = document.getElementById('expiry');
  var dateField = document.querySelector('[data-expiry-date]');
  if (expiry && dateField) {
    var sync = function () { dateField.hidden = expiry.value !== 'date'; };
    expiry.addEventListener('change', sync);
    sync();
  }
})();
`;
