// The console in a real browser: Debian's Chromium, headless, driven by
// playwright-core; every page checked by axe-core (no serious or critical
// violation) and screenshotted. Run by tests/tests/console_browser.rs in phases,
// between which the Rust test plays the device:
//   first-login  log in with the temporary password, change it, enrol TOTP from its
//                QR page, log in again with password and code, create an Apple
//                enrollment and save its QR code (the test decodes it with zbarimg
//                and enrolls a simulated iPhone from it);
//   policy       make a device group for the enrollment's group and a policy for it
//                in the form, preview it, apply it, assign it (the test then plays
//                the phone installing it and reporting a compliant passcode);
//   operate      see the device compliant (green), find it, run a bulk action, lock it, wipe it (a wrong serial
//                first), file, classify, act on and close an incident, switch to
//                Polish and Ukrainian, log out.
// Environment: MDM_URL, MDM_USER, MDM_TEMP_PASSWORD, MDM_PASSWORD, MDM_OUT (screenshots
// and the hand-over files), MDM_CHROMIUM, and for `operate` MDM_DEVICE_ID, MDM_SERIAL,
// MDM_DEVICE_NAME.
import { chromium } from "playwright-core";
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env("MDM_URL");
const out = env("MDM_OUT");
mkdirSync(out, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const phase = process.argv[2];
const statePath = path.join(out, "browser-state.json");
const failures = [];
const cspViolations = [];

// RFC 6238 from the base32 secret the enrolment page shows.
function totp(secret, unix) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[19] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, "0");
}

// An image's natural width once it has loaded (0 if it failed): an <img> is in the
// page before its picture has arrived, so its width right away may still be 0.
async function loadedWidth(locator) {
  return locator.evaluate((img) =>
    img.complete
      ? img.naturalWidth
      : new Promise((resolve) => {
          img.addEventListener("load", () => resolve(img.naturalWidth), { once: true });
          img.addEventListener("error", () => resolve(0), { once: true });
        }),
  );
}

function expect(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

// axe-core on the page as it is now, and a full-page screenshot under MDM_OUT.
async function check(page, name) {
  // A click on a link may have started a navigation that has not finished: axe needs
  // the new document.
  await page.waitForLoadState("load");
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) {
    failures.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`);
  }
  await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
  console.log(`checked ${name}: ${result.passes.length} axe rules passed, ${bad.length} serious or critical violations`);
}

let lastPage = null;

async function newPage(context) {
  const page = await context.newPage();
  lastPage = page;
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
  });
  page.on("pageerror", (e) => failures.push(`script error: ${e.message}`));
  return page;
}

async function firstLogin(browser) {
  const context = await browser.newContext({ locale: "en-GB" });
  const page = await newPage(context);
  await page.goto(`${base}/console/`);
  expect(page.url().includes("/console/login"), `not sent to the login page: ${page.url()}`);
  await check(page, "01-login");
  await page.fill("#username", env("MDM_USER"));
  await page.fill("#password", env("MDM_TEMP_PASSWORD"));
  await page.click("#login-submit");
  await page.waitForURL("**/console/password");
  await check(page, "02-password-change");
  await page.fill("#current_password", env("MDM_TEMP_PASSWORD"));
  await page.fill("#new_password", env("MDM_PASSWORD"));
  await page.fill("#confirm_password", env("MDM_PASSWORD"));
  await page.click("#password-submit");
  await page.waitForURL("**/console/totp");
  await check(page, "03-totp-enrolment");
  const secret = (await page.textContent("#totp-secret")).trim();
  const qr = await loadedWidth(page.locator("img.qr"));
  expect(qr > 0, "the TOTP QR code did not render");
  const now = Math.floor(Date.now() / 1000);
  await page.fill("#code", totp(secret, now));
  await page.click("#enrol-submit");
  await page.waitForSelector("#recovery-codes");
  await check(page, "04-recovery-codes");
  // Enrolled in this session, which goes on; then out, and in with both factors.
  await page.click("text=Continue");
  await page.waitForURL("**/console/dashboard");
  await page.click("#logout");
  await page.waitForURL("**/console/login");
  await page.fill("#username", env("MDM_USER"));
  await page.fill("#password", env("MDM_PASSWORD"));
  await page.click("#login-submit");
  await page.waitForURL("**/console/login/totp**");
  await check(page, "05-login-totp");
  await page.fill("#code", totp(secret, now + 30));
  await page.click("#totp-submit");
  await page.waitForURL("**/console/dashboard");
  await check(page, "06-dashboard");

  await page.click('nav a[href="/console/enrollments"]');
  await page.click("#new-enrollment summary");
  await page.fill("#enrollment-name", "Front desk iPhones");
  await page.fill("#enrollment-max-uses", "5");
  await page.fill("#enrollment-group", "front-desk");
  await page.click("#enrollment-create");
  await page.waitForSelector("#enrollment-qr");
  const size = await loadedWidth(page.locator("#enrollment-qr"));
  expect(size >= 300, `the enrollment QR code is ${size} px wide`);
  await check(page, "07-enrollment");
  const src = await page.getAttribute("#enrollment-qr", "src");
  const png = await context.request.get(`${base}${src}`);
  expect(png.ok(), `the QR image: ${png.status()}`);
  writeFileSync(path.join(out, "enrollment-qr.png"), await png.body());
  await page.click("#enrollment-print");
  await page.waitForSelector("img.qr-print");
  await check(page, "08-enrollment-print");
  await page.goto(`${base}/console/enrollments`);
  await check(page, "09-enrollments");
  await context.storageState({ path: statePath });
  writeFileSync(path.join(out, "first-login.json"), JSON.stringify({ secret }));
}

// A device group for the enrollment's group, a policy made in the form (a field
// error first), previewed, applied and assigned to the group.
async function policy(browser) {
  const context = await browser.newContext({ storageState: statePath, locale: "en-GB" });
  const page = await newPage(context);
  await page.goto(`${base}/console/dashboard`);
  await page.click('nav a[href="/console/policies"]');
  await page.click("#new-group summary");
  await page.fill("#group-name", "Front desk");
  await page.selectOption("#group-kind", "enrollment");
  await page.fill("#group-match", "front-desk");
  await page.click("#group-create");
  await page.waitForSelector("p.notice");
  await check(page, "p1-policies");
  await page.click("#policy-new");
  await page.fill("#policy-name", "front-desk");
  await page.check("#passcode-required");
  await page.fill("#passcode-min-length", "six");
  await page.click("#policy-form-preview");
  await page.waitForURL("**/console/policies/preview");
  expect((await page.textContent("#passcode-min-length-error")).includes("whole number"), "no field-level error");
  await check(page, "p2-policy-field-error");
  await page.fill("#passcode-min-length", "6");
  await page.selectOption("#passcode-auto-lock", "5");
  await page.click("#policy-form-preview");
  await page.waitForSelector("#policy-diff");
  await check(page, "p3-policy-preview");
  await page.click("#policy-apply");
  await page.waitForSelector("p.notice");
  await page.selectOption("#assign-group", "Front desk");
  await page.click("#assign-submit");
  await page.waitForSelector("#assignments li");
  await check(page, "p4-policy");
  await context.storageState({ path: statePath });
}

async function operate(browser) {
  const context = await browser.newContext({ storageState: statePath, locale: "en-GB" });
  const page = await newPage(context);
  const deviceId = env("MDM_DEVICE_ID");
  // The policy reached the phone, which reported a compliant passcode: green.
  await page.goto(`${base}/console/devices/${deviceId}`);
  expect((await page.getAttribute("#compliance", "class")).includes("compliance-compliant"), "the device is not shown compliant");
  expect((await page.textContent("#compliance")).trim() === "Compliant", "the badge does not say Compliant");
  expect((await page.textContent("#device-policies")).includes("front-desk"), "the policy is not listed on the device");
  await page.goto(`${base}/console/dashboard`);
  // Keyboard: the first Tab reaches the skip link, which moves focus to the page.
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement.classList.contains("skip")), "the first Tab stop is not the skip link");
  await page.keyboard.press("Enter");
  expect(await page.evaluate(() => document.activeElement.id === "main"), "the skip link did not move the focus");

  await page.click('nav a[href="/console/devices"]');
  await page.fill("#q", env("MDM_DEVICE_NAME"));
  await page.click("button:has-text('Filter')");
  await page.waitForSelector(`a[href="/console/devices/${deviceId}"]`);
  expect((await page.textContent("#devices-summary")).trim() === "1 device", "the search did not find the one device");
  await check(page, "10-devices");
  // A bulk action, with its progress.
  await page.check("#select-all");
  await page.selectOption("#bulk-action", "query");
  await page.click("#bulk-submit");
  await page.waitForSelector("#progress-summary");
  await check(page, "11-bulk-progress");

  await page.goto(`${base}/console/devices/${deviceId}`);
  await check(page, "12-device");
  await page.fill("#lock-message", "Please return this phone to the town hall");
  await page.click("#lock-submit");
  await page.waitForSelector("p.notice");
  expect((await page.textContent("p.notice")).includes("lock was sent"), "no lock notice");
  await page.fill("#wipe-confirm", "NOT-THE-SERIAL");
  await page.click("#wipe-submit");
  await page.waitForSelector("p.error");
  expect((await page.textContent("p.error")).includes("Not wiped"), "a wrong serial was not refused");
  await page.fill("#wipe-confirm", env("MDM_SERIAL"));
  await page.click("#wipe-submit");
  await page.waitForSelector("p.notice");
  expect((await page.textContent("p.notice")).includes("wipe was sent"), "no wipe notice");
  await check(page, "13-device-after-wipe");

  await page.click('nav a[href="/console/incidents"]');
  await page.click("#file-incident summary");
  await page.fill("#incident-name", "Phone lost on the tram");
  await page.fill("#incident-type", "lost_device");
  await page.selectOption("#incident-level", "3");
  await page.fill("#incident-devices", deviceId);
  await page.fill("#incident-plan", "Lock, locate, wipe if not found in 24 hours");
  await page.fill("#incident-responsible", "Ewa Nowak");
  await page.click("#incident-submit");
  await page.waitForSelector("#incident-level");
  expect((await page.getAttribute("#incident-level", "class")).includes("level-orange"), "level 3 is not orange");
  await check(page, "14-incident-filed");
  await page.check('input[name="classification"][value="confirmed"]');
  await page.selectOption("#classify-level", "4");
  await page.click("#classify-submit");
  await page.waitForSelector("p.notice");
  expect((await page.getAttribute("#incident-level", "class")).includes("level-red"), "level 4 is not red");
  await page.check('input[name="kind"][value="device_facts"]');
  await page.click("#evidence-submit");
  await page.waitForSelector("code.hash");
  await page.fill("#action-description", "Device locked and wiped remotely");
  await page.click("#action-submit");
  await page.waitForSelector("p.notice");
  await page.fill("#closing-report-input", "Device wiped; the police were informed.");
  await page.click("#close-submit");
  await page.waitForSelector("#closing-report");
  expect((await page.textContent("#incident-status")).trim() === "Completed", "the incident is not completed");
  await check(page, "15-incident-closed");
  await page.click('nav a[href="/console/incidents"]');
  await page.waitForURL("**/console/incidents");
  await check(page, "16-incidents");
  // The administration pages, read.
  for (const [href, name] of [
    ["/console/directory", "16a-directory"],
    ["/console/settings", "16b-settings"],
    ["/console/admins", "16c-admins"],
    ["/console/audit", "16d-audit"],
  ]) {
    await page.click(`nav a[href="${href}"]`);
    await page.waitForURL(`**${href}`);
    await check(page, name);
  }
  await page.click("#audit-verify");
  await page.waitForURL("**/console/audit?verify=1**");
  expect((await page.textContent("#audit-chain")).trim() === "Verified", "the audit chain is not shown verified");
  await check(page, "16e-audit-verified");

  // Polish, then Ukrainian: the menu applies at once (the script submits it).
  await page.selectOption("#language", "pl");
  await page.waitForURL("**done=language**");
  expect((await page.getAttribute("html", "lang")) === "pl", "not Polish");
  await page.goto(`${base}/console/dashboard`);
  expect((await page.textContent("h1")).trim() === "Pulpit", "the dashboard is not in Polish");
  await check(page, "17-dashboard-pl");
  await page.goto(`${base}/console/devices/${deviceId}`);
  await check(page, "18-device-pl");
  await page.selectOption("#language", "uk");
  await page.waitForURL("**done=language**");
  await page.goto(`${base}/console/incidents`);
  expect((await page.getAttribute("html", "lang")) === "uk", "not Ukrainian");
  expect((await page.textContent("h1")).trim() === "Реєстр інцидентів", "the register is not in Ukrainian");
  await check(page, "19-incidents-uk");
  await page.goto(`${base}/console/dashboard`);
  await check(page, "20-dashboard-uk");
  await page.click("#logout");
  await page.waitForURL("**/console/login");
}

const browser = await chromium.launch({
  executablePath: env("MDM_CHROMIUM"),
  headless: true,
  args: ["--no-sandbox"],
});
try {
  if (phase === "first-login") await firstLogin(browser);
  else if (phase === "policy") await policy(browser);
  else if (phase === "operate") await operate(browser);
  else throw new Error(`unknown phase ${phase}`);
} catch (e) {
  failures.push(`${phase}: ${e.stack || e}`);
  if (lastPage) {
    // What the browser showed when it failed, for the log and as a picture.
    failures.push(`at ${lastPage.url()}: ${(await lastPage.textContent("body").catch(() => "")).replace(/\s+/g, " ").slice(0, 600)}`);
    await lastPage.screenshot({ path: path.join(out, `failed-${phase}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
for (const v of cspViolations) failures.push(`Content-Security-Policy violation: ${v}`);
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(`${phase}: passed`);
