// The page in Debian's Firefox ESR (no WebGPU on Linux: the CPU engine), driven by
// puppeteer-core over WebDriver BiDi: it must load whichever build of the module Firefox picks
// (relaxed SIMD where its WebAssembly validates it, from Firefox 145) and give transformers'
// probabilities, on that build and on the baseline one; and, served cross-origin isolated, on
// the threaded module.
//
//   node --test tests/e2e/firefox.test.mjs   (after `trunk build --release`; needs firefox-esr)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import puppeteer from "puppeteer-core";

const ROOT = resolve(import.meta.dirname, "../..");
const FIX = join(ROOT, "tests/fixtures");
const PORT = 8771;
const BASE = `http://127.0.0.1:${PORT}`;
const REF = JSON.parse(readFileSync(join(FIX, "reference/tiny-quickgelu.json"), "utf8"));
const TOL = 1e-3;
const FIREFOX = "/usr/bin/firefox-esr";

// The same page and model, served with COOP / COEP (scripts/serve.mjs --isolate).
const ISOLATED = `http://127.0.0.1:${PORT + 1}`;

const servers = [];
before(async () => {
  for (const [port, extra] of [[PORT, []], [PORT + 1, ["--isolate"]]]) {
    const server = spawn(process.execPath, [join(ROOT, "scripts/serve.mjs"), "--port", String(port), "--root", join(ROOT, "dist"), "--model", `tiny=${join(FIX, "tiny-quickgelu")}`, ...extra], { stdio: ["ignore", "pipe", "inherit"] });
    servers.push(server);
    await new Promise((ok, fail) => {
      server.on("exit", (code) => fail(new Error(`server exited (${code})`)));
      server.stdout.on("data", (d) => String(d).includes("serving") && ok());
    });
  }
});
after(() => servers.forEach((s) => s.kill()));

test("Firefox: the CPU engine on the build it picks, and on the baseline build, gives transformers' probabilities", { skip: !existsSync(FIREFOX) && "firefox-esr is not installed" }, async (t) => {
  const builds = {};
  for (const [base, query] of [[BASE, ""], [BASE, "&wasm=baseline"], [ISOLATED, ""]]) {
    const profile = mkdtempSync(join(tmpdir(), "webclip-firefox-"));
    const b = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true, protocol: "webDriverBiDi", userDataDir: profile });
    try {
      const page = await b.newPage();
      const console = [];
      page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
      await page.goto(`${base}/?model=/models/tiny/${query}`);
      await page.waitForSelector("body[data-ready=true]", { timeout: 240_000 });
      const build = await page.$eval("body", (b) => [b.dataset.backend, b.dataset.wasmBuild]);
      assert.equal(build[0], "cpu", console.join("\n"));
      const key = base === ISOLATED ? "isolated" : query || "auto";
      builds[key] = build[1];
      await page.$eval("#labels", (el, text) => {
        el.value = text;
        el.dispatchEvent(new Event("input", { bubbles: true }));
      }, REF.labels.join("\n"));
      await page.$eval("#top-k", (el, n) => {
        el.value = String(n);
        el.dispatchEvent(new Event("change", { bubbles: true }));
      }, REF.labels.length);
      await page.waitForFunction((n) => document.querySelector("#labels-info").textContent.startsWith(`${n} label`), { timeout: 60_000 }, REF.labels.length);
      const input = await page.$("#image-files");
      await input.uploadFile(join(FIX, "images/chelsea.png"));
      await page.waitForFunction(() => document.querySelector('#results .result[data-name="chelsea.png"]')?.dataset.state === "done", { timeout: 240_000 });
      const probs = await page.$$eval('#results .result[data-name="chelsea.png"] .bars li', (lis) => lis.map((li) => [li.dataset.label, Number(li.dataset.probability)]));
      const want = REF.images.find((i) => i.path.endsWith("chelsea.png")).probs;
      assert.equal(probs.length, REF.labels.length, console.join("\n"));
      for (const [label, p] of probs) {
        const diff = Math.abs(p - want[REF.labels.indexOf(label)]);
        assert.ok(diff <= TOL, `${key} / ${label}: ${p} vs transformers ${want[REF.labels.indexOf(label)]}`);
      }
    } finally {
      await b.close();
      rmSync(profile, { recursive: true, force: true });
    }
  }
  t.diagnostic(`Firefox picked the ${builds.auto} module, and the ${builds.isolated} one when isolated`);
  assert.equal(builds["&wasm=baseline"], "baseline");
  assert.ok(["relaxed", "baseline"].includes(builds.auto), JSON.stringify(builds));
  // Isolated, with relaxed SIMD, the threaded module; without relaxed SIMD, the baseline one.
  assert.equal(builds.isolated, builds.auto === "relaxed" ? "threads" : "baseline", JSON.stringify(builds));
});
