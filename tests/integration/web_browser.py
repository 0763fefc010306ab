#!/usr/bin/env python3
"""The web view in headless Chromium (chromium-driver, Selenium).

Run by web_browser.sh, which starts the controller and exports where it is
(WEB_BASE, WEB_SPKI, CLI_BIN, API, OPS, AGENT_CMD, WEB_DIR, WEB_SHOTS). As an
operator and as a viewer would, it checks that:

  - a wrong login URL and a reused one are refused; the right one signs in
    with an HttpOnly, Secure, SameSite=Strict, expiring session cookie;
  - an operator installs a host from the hosts page (after a confirmation)
    and sees it go from dispatched to installed as the agent reports,
    live: no reload of the page, and no request but the events stream;
    the power state the agent's BMC poll read shows next to it;
  - the install page shows the phase timeline, and an active install's
    the kickstart as rendered with its token redacted (the token appears
    nowhere in the page); the racks page the agent online and its cache
    use; the events page the events;
  - a viewer sees no install controls, and an install the viewer's page
    sends anyway is refused with 403;
  - the pages are keyboard navigable and fit a phone's width;
  - and takes a screenshot of each page.
"""
import json
import os
import shlex
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["WEB_BASE"]
DIR = os.environ["WEB_DIR"]
SHOTS = os.environ["WEB_SHOTS"]
# Generous: CI runs this next to QEMU boots on two cores.
WAIT = 60


def step(what):
    print("==", what, flush=True)


def fail(what):
    print("FAIL:", what, flush=True)
    sys.exit(1)


def cli(*args, viewer=False):
    cmd = [os.environ["CLI_BIN"]]
    if viewer:
        cmd += ["--controller", os.environ["OPS"], "--ca", "ca/ca.crt", "--server-name",
                "ctl.test", "--cert", "ca/viewer/val.crt", "--key", "ca/viewer/val.key"]
    else:
        cmd += ["--controller", os.environ["API"]]
    r = subprocess.run(cmd + list(args), cwd=DIR, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail("rackboot %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def agent(*args, background=False):
    cmd = shlex.split(os.environ["AGENT_CMD"]) + list(args)
    if background:
        return subprocess.Popen(cmd, cwd=DIR, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    r = subprocess.run(cmd, cwd=DIR, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail("rb-fake-agent %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def install_id(host):
    rows = json.loads(cli("status", "--json"))
    ids = [r["install_id"] for r in rows if r["host"] == host]
    return ids[0] if ids else ""


def install_token(host):
    """The token the controller gave the agent for the host's install: what
    the page must never show."""
    out = agent("sync", "--held", "0", "--wait", "0")
    for line in out.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if line.startswith("intent ") and f.get("host") == host and f.get("token"):
            return f["token"]
    fail("no token for %s in the agent's sync: %s" % (host, out))


def browser(name, width=1280, height=900):
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--host-resolver-rules=MAP ctl.test [::1]",
              # Trust the web view's own key, and only it (needs a profile
              # directory of its own).
              "--ignore-certificate-errors-spki-list=" + os.environ["WEB_SPKI"],
              "--user-data-dir=" + os.path.join(DIR, "chromium-" + name),
              "--window-size=%d,%d" % (width, height)):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(WAIT)
    return d


def wait_for(d, what, cond, timeout=WAIT):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.2).until(cond)
    except TimeoutException:
        d.save_screenshot(os.path.join(DIR, "failed.png"))
        fail("%s (page %s, text: %r)" % (what, d.current_url,
                                          d.find_element(By.TAG_NAME, "body").text[:800]))


def state_of(host):
    """The host's row's state, read in one script: the page redraws rows
    whenever it is told something changed."""
    js = ('const c = document.querySelector(\'tr[data-host="%s"] td[data-state]\');'
          'return c ? c.dataset.state : null;') % host
    return lambda d: d.execute_script(js)


def progress_of(host):
    js = ('const p = document.querySelector(\'tr[data-host="%s"] progress\');'
          'return p ? p.getAttribute("value") : null;') % host
    return lambda d: d.execute_script(js)


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, name + ".png"))


def refused_page(d, url):
    d.get(url)
    wait_for(d, "a refused login says why", lambda d: "This login link is not valid"
             in d.find_element(By.TAG_NAME, "body").text)
    if any(c["name"] == "rackboot_session" for c in d.get_cookies()):
        fail("a refused login set a session cookie")


def main():
    step("a wrong login URL is refused")
    op = browser("operator")
    refused_page(op, BASE + "/login/" + "0" * 64)

    step("the operator signs in with the one-time URL")
    login = cli("web", "login").strip()
    op.get(login)
    wait_for(op, "signed in, on the hosts page",
             lambda d: d.current_url.startswith(BASE + "/hosts") and
             d.find_elements(By.CSS_SELECTOR, 'tr[data-host="web1"]'))
    cookies = [c for c in op.get_cookies() if c["name"] == "rackboot_session"]
    if not cookies:
        fail("no session cookie")
    c = cookies[0]
    if not (c.get("httpOnly") and c.get("secure") and c.get("sameSite") == "Strict"
            and c.get("expiry")):
        fail("session cookie flags: %r" % c)
    wait_for(op, "the header says who", lambda d: "(operator)" in
             d.find_element(By.ID, "who").text)

    step("the same URL again is refused, in another browser")
    other = browser("reuse")
    refused_page(other, login)
    other.quit()

    step("install web2 from the page, after a confirmation")
    op.execute_script("window.rbMark = 'no reload'")
    op.find_element(By.CSS_SELECTOR, 'input[name="pick"][value="web2"]').click()
    op.find_element(By.ID, "a-profile").send_keys("el9")
    op.find_element(By.ID, "install").click()
    alert = wait_for(op, "a confirmation", EC.alert_is_present())
    if "web2" not in alert.text or "el9" not in alert.text:
        fail("confirmation text: %r" % alert.text)
    alert.accept()
    wait_for(op, "the page says it is done",
             lambda d: d.find_element(By.ID, "result").text.startswith("Done"))
    wait_for(op, "web2 requested", lambda d: state_of("web2")(d) in ("requested", "dispatched"))

    step("the agent takes it: dispatched, live")
    # As a real agent's uplink reports with its syncs: cache use, and what
    # it renders answer files with.
    watch = agent("watch", "--wait", "60000", "--cache-bytes", "1288490189", "--cache-limit",
                  "21474836480", "--base-url", "http://[2001:db8:a::fe]:8080", "--dns",
                  "2001:db8::53", "--search", "rack-a.example.net", background=True)
    try:
        wait_for(op, "web2 dispatched on the page", lambda d: state_of("web2")(d) == "dispatched")
        iid = install_id("web2")
        if not iid:
            fail("web2 has no install id")
        shot(op, "hosts-dispatched")

        step("the agent reports the install: installed, live")
        iid3 = install_id("web3")
        agent("events", "--from", "1", "web1:-:power_status:off", "web2:-:power_status:on",
              "web3:%s:dhcp_bound" % iid3, "web3:%s:kickstart_fetched" % iid3,
              "web2:%s:dhcp_bound" % iid,
              "web2:%s:kernel_fetched" % iid, "web2:%s:installing:40" % iid)
        wait_for(op, "web2 installing at 40%", lambda d: state_of("web2")(d) == "installing" and
                 progress_of("web2")(d) == "40")
        wait_for(op, "power states as the BMCs said", lambda d: d.execute_script(
            "return ['web1', 'web2'].map(h => document.querySelector("
            "'tr[data-host=\"' + h + '\"] td[data-power]')?.dataset.power).join()") == "off,on")
        shot(op, "hosts")
        agent("events", "--from", "8", "web2:%s:installed" % iid)
        wait_for(op, "web2 installed on the page", lambda d: state_of("web2")(d) == "installed")
    finally:
        watch.terminate()
        watch.wait(timeout=30)
    if op.execute_script("return window.rbMark") != "no reload":
        fail("the page reloaded")
    if op.execute_script("return document.body.dataset.live") != "on":
        fail("the events stream is not open")
    # The live updates came from the stream: left alone, the page asks
    # for nothing (no polling loop; the stream itself is not listed until
    # it ends). app.js has no setInterval either (web_browser.sh).
    count = "return performance.getEntriesByType('resource').length"
    before = op.execute_script(count)
    time.sleep(6)
    after = op.execute_script(count)
    if after != before:
        fail("the page made %d requests while nothing happened" % (after - before))

    step("keyboard: Tab reaches the navigation, Enter follows it")
    op.get(BASE + "/hosts")  # focus starts at the top of a fresh page
    wait_for(op, "the hosts page", lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-host]'))
    keys = ActionChains(op)
    seen = []
    for _ in range(6):
        keys.send_keys(Keys.TAB).perform()
        seen.append(op.execute_script(
            "const e = document.activeElement; return e.tagName + ' ' + e.textContent"))
        if op.switch_to.active_element.get_attribute("data-page") == "racks":
            break
    else:
        fail("Tab did not reach the Racks link; focus went to %r" % seen)
    keys.send_keys(Keys.ENTER).perform()

    step("racks: the agent online, its cache use")
    wait_for(op, "rack-a online", lambda d: d.find_elements(
        By.CSS_SELECTOR, 'tr[data-rack="rack-a"] td.online'))
    row = op.find_element(By.CSS_SELECTOR, 'tr[data-rack="rack-a"]').text
    if "1.2 GiB of 20 GiB" not in row:
        fail("rack-a's cache use: %r" % row)
    shot(op, "racks")

    step("the install page: the phase timeline")
    op.get(BASE + "/install?host=web2")
    wait_for(op, "the timeline", lambda d: "Latest install: " + iid in
             d.find_element(By.TAG_NAME, "main").text)
    text = op.find_element(By.TAG_NAME, "main").text
    for phase in ("dhcp_bound", "kernel_fetched", "installing", "installed"):
        if phase not in text:
            fail("timeline without %s: %r" % (phase, text))
    shot(op, "install")

    step("an active install's page: its kickstart as rendered, token redacted")
    op.get(BASE + "/install?host=web3")
    wait_for(op, "the kickstart", lambda d: d.find_elements(By.CSS_SELECTOR, "#answer pre"))
    answer = op.find_element(By.ID, "answer").text
    if "Kickstart as rendered (token redacted)" not in answer or "REDACTED" not in answer:
        fail("the answer section: %r" % answer)
    if install_token("web3") in op.page_source:
        fail("the install's token reached the browser")
    shot(op, "install-active")

    step("events: the latest, live")
    op.get(BASE + "/events")
    wait_for(op, "events listed", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "ol.events li")) >= 4)
    shot(op, "events")

    step("a phone's width: nothing wider than the screen")
    phone = browser("phone", 390, 844)
    phone.get(cli("web", "login").strip())
    wait_for(phone, "hosts on a phone", lambda d: d.find_elements(
        By.CSS_SELECTOR, 'tr[data-host="web2"]'))
    over = phone.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if over > 0:
        fail("the hosts page is %d px wider than a phone's screen" % over)
    shot(phone, "hosts-phone")
    phone.quit()

    step("a viewer sees, and may not install")
    viewer = browser("viewer")
    viewer.get(cli("web", "login", viewer=True).strip())
    wait_for(viewer, "the viewer's hosts page", lambda d: d.find_elements(
        By.CSS_SELECTOR, 'tr[data-host="web1"]') and "(viewer)" in
        d.find_element(By.ID, "who").text)
    if viewer.find_elements(By.ID, "install") or viewer.find_elements(By.ID, "cancel"):
        fail("a viewer's page shows install controls")
    status, body = viewer.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch("/api/install", {method: "POST", credentials: "same-origin",
                               headers: {"Content-Type": "application/json"},
                               body: JSON.stringify({hosts: ["web1"], profile: "el9"})})
          .then(async (r) => done([r.status, await r.text()]));
    """)
    if status != 403 or "permission denied" not in body:
        fail("a viewer's install: %s %s" % (status, body))
    if install_id("web1"):
        fail("web1 has an install after a viewer's refused request")
    viewer.quit()
    op.quit()
    print("the browser saw it all; screenshots in", SHOTS, flush=True)


if __name__ == "__main__":
    main()
