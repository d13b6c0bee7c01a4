// Drives the web console in headless Chromium against a running lucid (started by
// crates/lucid/tests/console.rs, which checks the files this writes to OUT).
// Env: BASE (server URL), KEY (API key), SMALL and LARGE (image paths), OUT (a folder).

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";
import { readFile } from "node:fs/promises";

const { BASE, KEY, SMALL, LARGE, OUT } = process.env;
const STEP = 60_000;

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });

async function step(name, body) {
  try {
    await body();
    console.log(`ok: ${name}`);
  } catch (e) {
    await page.screenshot({ path: path.join(OUT, "failure.png"), fullPage: true });
    console.error(`FAILED: ${name}\n${e.stack}\n${problems.join("\n")}`);
    await browser.close();
    process.exit(1);
  }
}

const status = page.locator("#job-status");

await step("the key is asked for once, then kept in session storage", async () => {
  await page.goto(BASE + "/");
  await page.locator("#api-key").fill(KEY);
  await page.locator("#save-key").click();
  await page.locator("#workspace").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => sessionStorage.getItem("lucid-api-key")), KEY);
  await page.reload();
  await page.locator("#workspace").waitFor({ state: "visible" });
  assert.equal(await page.locator("#key-panel").isHidden(), true);
});

await step("the forms come from the catalogue", async () => {
  const endpoints = await page.locator("#endpoint option").allTextContents();
  assert.equal(endpoints.length, 10, endpoints.join());
  await page.locator("#endpoint").selectOption("sharpen");
  const models = await page.locator("#model option").allTextContents();
  assert.ok(models.includes("Lens Blur V2"), models.join());
  assert.equal(await page.locator("#geometry").isHidden(), true);
  await page.locator("#endpoint").selectOption("enhance");
  assert.match(await page.locator("#model-does").textContent(), /super-resolution/);
});

await step("a large job shows progress and ETA, and cancels", async () => {
  await page.locator("#file").setInputFiles(LARGE);
  await page.locator("#output_width").fill("12000");
  await page.locator("#submit").click();
  await page.waitForFunction(() => Number(document.getElementById("progress").value) > 0, null, { timeout: STEP });
  assert.equal(await status.textContent(), "Processing");
  assert.match(await page.locator("#eta").textContent(), /^ETA \d+ s$/);
  // The input is shown alone until there is an output.
  await page.waitForFunction(() => document.getElementById("before").naturalWidth === 1411, null, { timeout: STEP });
  assert.equal(await page.locator("#slider").isVisible(), false);
  await page.screenshot({ path: path.join(OUT, "progress.png") });
  await page.locator("#cancel").click();
  await page.waitForFunction(() => document.getElementById("job-status").textContent === "Cancelled", null, { timeout: STEP });
  assert.equal(await page.locator("#cancel").isHidden(), true);
});

await step("a small job, dropped on the page, completes and compares before and after", async () => {
  // A real drop event carrying the file, as a file manager sends it.
  const bytes = [...(await readFile(SMALL))];
  const dropped = await page.evaluateHandle((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], "chelsea.png", { type: "image/png" }));
    return dt;
  }, bytes);
  await page.locator("#drop").dispatchEvent("drop", { dataTransfer: dropped });
  assert.equal(await page.locator("#drop-text").textContent(), "chelsea.png");
  await page.locator("#output_width").fill("1024");
  await page.locator("#output_format").selectOption("png");
  await page.locator("#submit").click();
  await page.waitForFunction(() => document.getElementById("job-status").textContent === "Completed", null, { timeout: STEP });
  await page.locator("#compare").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.getElementById("after").naturalWidth === 1024, null, { timeout: STEP });
  assert.ok(await page.evaluate(() => document.getElementById("before").naturalWidth) > 0);
  await page.locator("#slider").fill("20");
  const split = await page.evaluate(() => getComputedStyle(document.getElementById("compare")).getPropertyValue("--split").trim());
  assert.equal(split, "20%");
  await page.locator("#compare").screenshot({ path: path.join(OUT, "compare.png") });
  await page.screenshot({ path: path.join(OUT, "console.png"), fullPage: true });
});

await step("download saves the output", async () => {
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#download").click()]);
  assert.match(download.suggestedFilename(), /-enhance\.png$/);
  await download.saveAs(path.join(OUT, "download.png"));
});

await step("past jobs are listed, filtered and reopened", async () => {
  await page.locator("#refresh-jobs").click();
  await page.waitForFunction(() => document.querySelectorAll("#jobs-table tr").length === 2);
  await page.locator("#filter-status").selectOption("Cancelled");
  await page.waitForFunction(() => document.querySelectorAll("#jobs-table tr").length === 1);
  await page.locator("#jobs-table tr").first().click();
  await page.waitForFunction(() => document.getElementById("job-status").textContent === "Cancelled");
  await page.locator("#filter-status").selectOption("Completed");
  await page.waitForFunction(() => document.querySelectorAll("#jobs-table tr").length === 1);
  await page.locator("#jobs-table tr").first().click();
  await page.locator("#compare").waitFor({ state: "visible" });
  await page.locator("#filter-status").selectOption("");
  await page.waitForFunction(() => document.querySelectorAll("#jobs-table tr").length === 2);
  await page.screenshot({ path: path.join(OUT, "jobs.png"), fullPage: true });
});

await step("nothing went wrong in the page so far", async () => {
  assert.deepEqual(problems, []);
});

await step("a refused submit shows the API's message", async () => {
  // 32000 × 32000 is over the 512-megapixel limit: the server refuses it, not the form.
  await page.locator("#file").setInputFiles(SMALL);
  await page.locator("#output_width").fill("32000");
  await page.locator("#output_height").fill("32000");
  await page.locator("#submit").click();
  await page.waitForFunction(() => document.getElementById("notice").textContent.startsWith("chelsea.png: "));
  assert.notEqual(await page.locator("#notice").getAttribute("class"), "ok");
  console.log(`refused: ${await page.locator("#notice").textContent()}`);
});

// The refused submit's 400 is the only error the browser may log.
const refusal = /Failed to load resource: the server responded with a status of 400/;
assert.deepEqual(problems.filter((p) => !refusal.test(p)), []);
await browser.close();
