// What the page readers (dashboard.mjs, report.mjs) share: a headless Chromium with one page,
// its uncaught errors collected, and what was read printed as one JSON line.
import { chromium } from "playwright-core";

// Flags every reader runs with; a reader may add its own.
const FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"];

// Opens a page of `viewport` in a fresh Chromium (CHROMIUM, else /usr/bin/chromium), runs
// `read(page, errors)`, saves a screenshot to `shot` if given, and prints the object `read`
// returned with the page's errors. The browser is closed whatever happens.
export async function readPage({ viewport, flags = [], shot }, read) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [...FLAGS, ...flags],
  });
  try {
    const page = await browser.newPage({ viewport });
    const errors = [];
    page.on("pageerror", e => errors.push(String(e)));
    const result = await read(page, errors);
    if (shot) await page.screenshot({ path: shot, fullPage: true });
    result.errors = errors;
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}
