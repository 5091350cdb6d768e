// The review item is keyboard-driven: a key presses its button or follows its link
// (data-key), except while the note is being typed.
document.addEventListener("keydown", function (event) {
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  var target = document.querySelector('[data-key="' + event.key + '"]:not([disabled])');
  if (target) { event.preventDefault(); target.click(); }
});
