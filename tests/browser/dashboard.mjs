// Opens /dashboard in headless Chromium while the caller drives load, waits until the page
// shows what the caller expects, reads the page back and saves a screenshot.
// Usage: node dashboard.mjs BASE_URL SCREENSHOT.png [NODE,NODE,...]
// With NODE names: waits until every one of them is listed and shows non-zero figures in
// each service panel (see BUSY below); otherwise until four live frames have arrived.
import { readPage } from "./chromium.mjs";

const [base, shot, names] = process.argv.slice(2);
const want = names ? names.split(",") : [];
// Per-service figures that load on a node must move.
const BUSY = { giftcodes: ["ok"], primes: ["submitted"], todos: ["reads", "accepted"], abacus: ["requests"] };

await readPage({ viewport: { width: 1400, height: 900 }, flags: ["--disable-quic"], shot }, async page => {
  // Everything the test checks, read in one go from the page as it is.
  const read = (arg) => {
    const num = t => Number(String(t).replace(/,/g, "")) || 0;
    const rows = [...document.querySelectorAll("#nodes tbody tr[data-node]")].filter(r => !r.classList.contains("total"))
      .map(r => ({ node: r.dataset.node, role: r.children[1].textContent, rps: num(r.querySelector('[data-col="rps"]').textContent) }));
    const panels = {};
    for (const card of document.querySelectorAll("[data-panel]")) {
      const byNode = {};
      for (const tr of card.querySelectorAll("tbody tr[data-node]")) {
        byNode[tr.dataset.node] = Object.fromEntries([...tr.querySelectorAll("td[data-figure]")].map(td => [td.dataset.figure, num(td.textContent)]));
      }
      panels[card.dataset.panel] = byNode;
    }
    const c = document.querySelector('[data-chart="rps"] canvas');
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let drawn = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) drawn++;
    const out = {
      node: document.getElementById("node").textContent,
      members: num(document.getElementById("members").textContent),
      frames: num(document.getElementById("frames").textContent),
      live: num(document.body.dataset.live || 0),
      history_on_open: num(document.body.dataset.history || -1),
      state: document.getElementById("state-text").textContent,
      rps: num(document.getElementById("v-rps").textContent),
      drawn, rows, panels,
    };
    const ready = out.live >= 4 && arg.want.every(n => rows.some(r => r.node === n) &&
      Object.entries(arg.busy).every(([p, figs]) => figs.every(f => ((panels[p] || {})[n] || {})[f] > 0)));
    return { ready, out };
  };
  await page.addInitScript({ content: `window.__read = ${read.toString()};` });
  await page.goto(`${base}/dashboard`);
  const arg = { want, busy: BUSY };
  let result, timedOut = false;
  try {
    const handle = await page.waitForFunction(a => { const r = window.__read(a); return r.ready ? r.out : null; }, arg, { timeout: 45000, polling: 250 });
    result = await handle.jsonValue();
  } catch (e) {
    timedOut = true;
    result = await page.evaluate(a => window.__read(a).out, arg).catch(e => ({ error: String(e) }));
  }
  result.timed_out = timedOut;
  return result;
});
