// Optional comfort only: every page works without it. "/" jumps to the search box.
document.addEventListener("keydown", (event) => {
  const search = document.getElementById("q");
  if (event.key === "/" && search && document.activeElement !== search
      && !(document.activeElement instanceof HTMLInputElement)) {
    event.preventDefault();
    search.focus();
  }
});
