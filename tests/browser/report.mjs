// Opens a `floodgate bench --html` report (a local file, no server) in headless Chromium and
// reads back what its charts drew: per chart, each SVG line's name and point count.
// Usage: node report.mjs REPORT.html [SCREENSHOT.png]
import { readPage } from "./chromium.mjs";
import { pathToFileURL } from "node:url";

const [file, shot] = process.argv.slice(2);
await readPage({ viewport: { width: 1280, height: 900 }, shot }, async page => {
  const requests = [];
  // A self-contained report asks for nothing but itself.
  page.on("request", r => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
  await page.goto(pathToFileURL(file).href);
  const result = await page.evaluate(() => {
    const charts = {};
    for (const fig of document.querySelectorAll("figure[data-chart]")) {
      charts[fig.dataset.chart] = [...fig.querySelectorAll("svg path[data-series]")].map(p => ({
        series: p.dataset.series,
        points: Number(p.dataset.points),
        // The drawn length: 0 would mean a line with no extent.
        length: Math.round(p.getTotalLength()),
      }));
    }
    const cards = Object.fromEntries([...document.querySelectorAll(".card[data-figure]")].map(c => [c.dataset.figure, [...c.querySelectorAll("b")].map(b => b.textContent)]));
    return { title: document.getElementById("title").textContent, charts, cards, settings: document.getElementById("settings").innerText };
  });
  result.requests = requests;
  return result;
});
