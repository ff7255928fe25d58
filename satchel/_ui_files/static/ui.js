// The inspector's only script: a timeline that grows while the session works, and stepping
// through a replay's states. It builds nodes with textContent: nothing it shows is parsed.
"use strict";

function followTimeline(table) {
  const url = table.dataset.live;
  const point = table.dataset.point;
  let after = Number(table.dataset.after || "0");
  const body = table.tBodies[0];
  async function poll() {
    try {
      const answer = await fetch(`${url}?after=${after}`, { credentials: "same-origin" });
      if (answer.ok) {
        for (const entry of await answer.json()) {
          const row = document.createElement("tr");
          row.className = "fresh";
          const time = new Date(entry.at).toISOString().slice(11, 23);
          for (const [text, numeric] of [[String(entry.seq), true], [time, false], [entry.kind, false]]) {
            const cell = document.createElement("td");
            if (numeric) cell.className = "n";
            cell.textContent = text;
            row.appendChild(cell);
          }
          const data = document.createElement("td");
          const code = document.createElement("code");
          code.textContent = entry.data;
          data.appendChild(code);
          row.appendChild(data);
          const link = document.createElement("td");
          const a = document.createElement("a");
          a.href = point + String(entry.seq);
          a.textContent = "state here";
          link.appendChild(a);
          row.appendChild(link);
          body.appendChild(row);
          after = Math.max(after, entry.seq);
        }
      }
    } catch (error) {
      // The server may be restarting: try again at the next tick.
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
}

function stepThrough(steps) {
  const tables = Array.from(steps.querySelectorAll("table.step"));
  if (tables.length === 0) return;
  let shown = tables.length - 1;
  const label = steps.querySelector("#step-at");
  function show(index) {
    shown = Math.max(0, Math.min(tables.length - 1, index));
    tables.forEach((table, n) => table.classList.toggle("shown", n === shown));
    label.textContent = `step ${shown + 1} of ${tables.length}: ${tables[shown].dataset.label}`;
  }
  steps.querySelector("#step-back").addEventListener("click", () => show(shown - 1));
  steps.querySelector("#step-on").addEventListener("click", () => show(shown + 1));
  show(shown);
}

document.addEventListener("DOMContentLoaded", () => {
  const timeline = document.querySelector("table#timeline[data-live]");
  if (timeline) followTimeline(timeline);
  const steps = document.querySelector("#steps");
  if (steps) stepThrough(steps);
});
