// Opens /dashboard in headless Chromium while the caller drives load, waits until the page
// has received live samples, checks the charts show non-zero traffic, and saves a screenshot.
// Usage: node dashboard.mjs BASE_URL SCREENSHOT.png
import { chromium } from "playwright-core";

const [base, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  await page.goto(`${base}/dashboard`);
  await page.waitForFunction(() => Number(document.getElementById("samples").textContent) >= 4, null, { timeout: 20000 });
  const result = await page.evaluate(() => ({
    samples: Number(document.getElementById("samples").textContent),
    node: document.getElementById("node").textContent,
    rps: document.getElementById("v-rps").textContent,
    state: document.getElementById("state-text").textContent,
    // Any non-background pixel in the requests/s chart means a line was drawn.
    drawn: (() => {
      const c = document.querySelector('[data-chart="rps"] canvas');
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    })(),
  }));
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  result.errors = errors;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
