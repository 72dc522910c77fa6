"""The web console (/ui) in a real browser: Debian's chromium driven by Selenium through
chromedriver, against a real ``plutino serve --demo`` process that has a token.

One test walks the console as a person would: the token typed into the log-in field, every
page loaded, a rule created through the form (a SQL error first, shown at its line and
column), its counters watched as they rise, the rule stopped, a table created, a plugin
deleted and installed again from a URL, the pages at a phone's width. Screenshots go to the
test's tmp dir. Any JavaScript error, console error or refused resource (a CSP violation) in
the browser's log fails it; the only failed requests allowed are the 401s before the log-in
and the 400s of the SQL checks, which the page shows.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.api_helpers import ServerProcess
from helpers import wait_for
from plutino import __version__
from plutino.packages.format import pack

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

TOKEN = "console-test-token-8b1f"
WAIT_S = 20.0


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or next((p for p in ("/usr/bin/chromedriver",) if Path(p).exists()), None)
    if chromium is None or driver is None:
        pytest.skip("chromium and chromium-driver are not installed and could not be: `make test` installs them"
                    " through tools/system-deps.sh as root (apt-get install -y chromium chromium-driver)")
    return chromium, driver


@pytest.fixture
def server(tmp_path: Path, plugin_build: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", "--demo", "--bundled-dir", str(plugin_build),
                         env={"PLUTINO_TOKEN": TOKEN}).start()
    assert proc.http is not None
    proc.http.headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        wait_for(lambda: proc.get("/rules").json() == [
            {"id": "demo", "name": "demo", "status": "running", "message": ""}], "the demo rule to run")
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


class Log:
    """The browser's log, read as the test goes: errors other than the expected refusals fail."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.seen: list[dict[str, Any]] = []

    #: The SQL check answers 400 for SQL that is wrong, which the form shows: whenever typing
    #: pauses on a half-written statement too.
    EXPECTED = (r"/rules/validate - .* 400 ",)

    def check(self, allowed: tuple[str, ...] = ()) -> None:
        entries = self.driver.get_log("browser")
        self.seen += entries
        bad = []
        for entry in entries:
            if entry["level"] not in ("SEVERE", "WARNING"):
                continue
            message = entry["message"]
            if entry.get("source") == "network" and any(re.search(a, message) for a in allowed + self.EXPECTED):
                continue
            bad.append(f"{entry['level']} {entry.get('source')}: {message}")
        assert not bad, "the browser logged errors:\n" + "\n".join(bad)


def _text(driver: Any, css: str) -> str:
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:  # replaced by the page's next refresh: read again
        return ""


def _wait_text(driver: Any, css: str, predicate: Any, what: str) -> str:
    return wait_for(lambda: (lambda t: t if predicate(t) else None)(_text(driver, css)), what, WAIT_S)


def _graph(driver: Any) -> list[str]:
    """The nodes of the operator graph on show, in order."""
    return driver.execute_script("return [...document.querySelectorAll('.graph .node-name')].map(e => e.textContent)")


def _number(text: str) -> float:
    return float(text) if re.fullmatch(r"[0-9.]+", text or "") else -1.0


#: Every form control has a label, every chart a text title, and every visible text (not of a
#: disabled control) reaches WCAG AA contrast, 4.5:1, against the background it is drawn on.
AUDIT = """
const problems = [];
for (const c of document.querySelectorAll("input, select, textarea")) {
  if (c.type !== "hidden" && !c.labels.length && !c.getAttribute("aria-label")) problems.push("no label: #" + c.id);
}
for (const svg of document.querySelectorAll("svg[role=img]")) {
  const title = svg.querySelector("title");
  if (!title || !title.textContent.trim()) problems.push("a chart without a title");
}
const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
for (const el of document.querySelectorAll("body *")) {
  if (el.closest("svg, [disabled], .skip") || !el.getClientRects().length) continue;
  if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  const style = getComputedStyle(el);
  if (style.visibility === "hidden" || style.display === "none") continue;
  const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)}: ${el.tagName} ${el.textContent.trim().slice(0, 40)}`);
}
return problems;
"""


def _audit(driver: Any, page: str) -> None:
    problems = driver.execute_script(AUDIT)
    assert not problems, f"{page}: " + "; ".join(problems)


def _show(driver: Any, url: str, hash_: str, heading: str) -> None:
    driver.get(f"{url}/ui#{hash_}")
    _wait_text(driver, "main h1", lambda t: t == heading, f"the page {hash_} ({heading!r})")


def _type(element: Any, text: str) -> None:
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def test_console_pages_rule_form_live_counters_stop_and_plugins(server, browser, tmp_path, plugin_build):
    url, shots, log = server.url, tmp_path / "screenshots", Log(browser)
    shots.mkdir()
    shot = lambda name: browser.save_screenshot(str(shots / f"{name}.png"))  # noqa: E731

    # Without the token the API refuses, and the page says where to type it.
    browser.get(f"{url}/ui")
    _wait_text(browser, "main [role=alert]", lambda t: "token" in t, "the page to ask for the token")
    log.check(allowed=(r" 401 ",))
    assert not browser.find_element(By.ID, "logout-button").is_displayed()
    token = browser.find_element(By.ID, "token")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=token]").text == "API token"
    token.send_keys(TOKEN, Keys.ENTER)
    assert browser.execute_script("return sessionStorage.getItem('plutino.console.token')") == TOKEN
    assert browser.find_element(By.ID, "logout-button").is_displayed()

    # Overview: the version and uptime of GET /, the counts, the live total rows/s.
    _wait_text(browser, "#ov-version", lambda t: t == __version__, "the version on the overview")
    _wait_text(browser, "#ov-rules", lambda t: t == "1 (1 running)", "the rule count")
    _wait_text(browser, "#ov-rows-in", lambda t: _number(t) > 0, "the total rows in per second")
    assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]").text == "Overview"
    _audit(browser, "the overview")
    shot("overview")

    # Rules list: status, rates, errors of the demo rule.
    _show(browser, url, "/rules", "Rules")
    _wait_text(browser, "tr[data-rule=demo] [data-metric=in]", lambda t: _number(t) > 0, "demo's rows in per second")
    assert _text(browser, "tr[data-rule=demo] .badge") == "running"
    assert _text(browser, "tr[data-rule=demo] [data-metric=errors]") == "0"
    # A refresh keeps the focus where it is: the rows and cells that did not change stay.
    browser.execute_script("document.querySelector('tr[data-rule=demo] button').focus()")
    spark = "return document.querySelector('tr[data-rule=demo] svg.spark').outerHTML"
    before = browser.execute_script(spark)
    wait_for(lambda: browser.execute_script(spark) != before, "the rules list to refresh", WAIT_S)
    assert browser.execute_script("return document.activeElement.getAttribute('aria-label')") == "Stop rule demo"
    shot("rules")

    # The demo rule's page: its SQL, its operator graph, per-operator metrics charted live.
    _show(browser, url, "/rules/demo", "Rule demo")
    assert "mul2add1(temperature)" in _text(browser, "pre.sql")
    assert _graph(browser) == ["source_demo", "op_1_filter", "op_2_project", "sink_file_0"]
    _wait_text(browser, "#metrics-table tbody", lambda t: "sink_file_0" in t, "the metrics table")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".chart path")) >= 4, "the chart's lines", WAIT_S)
    _audit(browser, "the rule page")
    shot("rule-demo")

    # A new rule through the form: a SQL error shown at its line and column as it is typed.
    _show(browser, url, "/rules/new", "New rule")
    browser.find_element(By.ID, "rule-id").send_keys("console1")
    sql = browser.find_element(By.ID, "rule-sql")
    sql.send_keys("SELECT count, temperature", Keys.ENTER, "FROM demo WHER count > 1")
    _wait_text(browser, "#sql-position", lambda t: t == "Error at line 2, column 16:", "the SQL error's position")
    assert "at line 2, col 16" in _text(browser, "#sql-error")
    assert sql.get_attribute("aria-invalid") == "true"
    assert _text(browser, "pre.where") == "FROM demo WHER count > 1\n" + " " * 15 + "^"
    _audit(browser, "the rule form with its SQL error")
    shot("rule-new-sql-error")
    browser.find_element(By.ID, "sql-jump").click()
    assert browser.execute_script("return document.activeElement.id") == "rule-sql"
    caret = browser.execute_script("return document.activeElement.selectionStart")
    assert caret == len("SELECT count, temperature\n") + 15
    log.check()
    _type(sql, "SELECT count, temperature FROM demo WHERE count > 1")
    _type(browser.find_element(By.ID, "rule-actions"), '[{"nop": {}}]')
    _wait_text(browser, "#sql-ok", lambda t: t == "The rule is valid.", "the SQL to be valid")
    assert sql.get_attribute("aria-invalid") is None
    browser.find_element(By.ID, "rule-save").click()

    # Its page: the counters rise while it runs; Stop stops it.
    _wait_text(browser, "main h1", lambda t: t == "Rule console1", "the new rule's page")
    assert server.get("/rules/console1").json()["actions"] == [{"nop": {}}]
    first = _number(_wait_text(browser, "#rule-rows-in", lambda t: _number(t) > 0, "console1's rows in"))
    _wait_text(browser, "#rule-rows-in", lambda t: _number(t) > first, "console1's rows in to rise")
    _wait_text(browser, "#rule-rows-out", lambda t: _number(t) > 0, "console1's rows out")
    wait_for(lambda: _graph(browser) == ["source_demo", "op_1_filter", "op_2_project", "sink_nop_0"],
             "console1's operator graph", WAIT_S)
    shot("rule-console1-running")
    browser.find_element(By.ID, "rule-stop").click()
    _wait_text(browser, ".rule-status .badge", lambda t: t == "stopped", "console1 to show stopped")
    assert server.get("/rules/console1/status").json()["status"] == "stopped"
    assert server.get("/rules/demo/status").json()["status"] == "running"
    shot("rule-console1-stopped")
    browser.find_element(By.ID, "rule-restart").click()
    _wait_text(browser, ".rule-status .badge", lambda t: t == "running", "console1 to run again")

    # Edit: the form holds the rule and checks it at once; Delete asks once more, then deletes.
    _show(browser, url, "/rules/console1/edit", "Edit rule console1")
    assert browser.find_element(By.ID, "rule-id").get_attribute("readonly") is not None
    _wait_text(browser, "#sql-ok", lambda t: t == "The rule is valid.", "the stored rule to check valid")
    _show(browser, url, "/rules/console1", "Rule console1")
    delete = browser.find_element(By.ID, "rule-delete")
    delete.click()
    assert delete.text == "Confirm delete"
    delete.click()
    _wait_text(browser, "main h1", lambda t: t == "Rules", "the rules list after the delete")
    assert [r["id"] for r in server.get("/rules").json()] == ["demo"]
    assert "Rule console1 is deleted." in _text(browser, "#notice")

    # Streams and tables: the definitions; a table created through the form.
    _show(browser, url, "/streams", "Streams and tables")
    assert 'TYPE="random"' in _text(browser, "article[data-name=demo] pre")
    browser.find_element(By.ID, "stream-sql").send_keys(
        'CREATE TABLE lookup (id bigint, label string) WITH (TYPE="memory", DATASOURCE="lookup")')
    browser.find_element(By.CSS_SELECTOR, "#stream-form button[type=submit]").click()
    _wait_text(browser, "article[data-name=lookup] h3", lambda t: t == "lookup table", "the new table")
    assert server.get("/tables").json() == ["lookup"]
    shot("streams")
    drop = browser.find_element(By.CSS_SELECTOR, "article[data-name=lookup] button.danger")
    drop.click()
    drop.click()
    wait_for(lambda: server.get("/tables").json() == [], "the table to be dropped", WAIT_S)
    _wait_text(browser, "#notice", lambda t: t == "Table lookup is dropped.", "the page to say the table is dropped")

    # Plugins: kind, version, ABI tag, sha256, functions; delete one and install it from a URL.
    _show(browser, url, "/plugins", "Plugins")
    row = "tr[data-plugin='function/fastmath']"
    _wait_text(browser, row, lambda t: "1.0.0" in t and "1.1" in t and "mul2add1, upperAscii" in t, "fastmath's row")
    sha = server.get("/plugins/functions/fastmath").json()["sha256"]
    browser.find_element(By.CSS_SELECTOR, f"{row} summary").click()  # the full sha256 unfolds
    assert browser.find_element(By.CSS_SELECTOR, f"{row} code.hash").text == sha
    browser.find_element(By.CSS_SELECTOR, f"{row} .actions button:not(.danger)").click()
    _wait_text(browser, f"{row} .check-output pre", lambda t: '"ok": true' in t, "fastmath's check output")
    delete = browser.find_element(By.CSS_SELECTOR, "tr[data-plugin='function/echo'] button.danger")
    delete.click()
    assert delete.text == "Confirm deleting echo"
    delete.click()
    wait_for(lambda: "echo" not in server.get("/plugins/functions").json(), "echo to be deleted", WAIT_S)
    _wait_text(browser, "#notice", lambda t: "function plugin echo is deleted" in t, "the page to say echo is deleted")
    package = pack(plugin_build / "functions" / "echo.so", tmp_path / "echo.zip")
    browser.find_element(By.CSS_SELECTOR, "#plugin-kind option[value=function]").click()
    browser.find_element(By.ID, "plugin-name").send_keys("echo")
    browser.find_element(By.ID, "plugin-url").send_keys(package.as_uri())
    browser.find_element(By.CSS_SELECTOR, "#plugin-form button[type=submit]").click()
    _wait_text(browser, "tr[data-plugin='function/echo']", lambda t: "1.0.0" in t, "echo installed again")
    assert "echo" in server.get("/plugins/functions").json()
    _audit(browser, "the plugins page")
    shot("plugins")
    log.check()

    # A phone's width: no page scrolls sideways; the tables scroll in their own boxes.
    browser.set_window_size(390, 844)
    for hash_, heading in (("/", "Overview"), ("/rules", "Rules"), ("/rules/demo", "Rule demo"),
                           ("/rules/new", "New rule"), ("/streams", "Streams and tables"), ("/plugins", "Plugins")):
        _show(browser, url, hash_, heading)
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{hash_} is wider than the phone: {width}"
        _audit(browser, hash_)
        shot("phone" + (hash_.replace("/", "-") if hash_ != "/" else "-overview"))

    # The keyboard: the first Tab reaches the skip link, the next ones the sections.
    _show(browser, url, "/rules", "Rules")
    browser.refresh()
    _wait_text(browser, "main h1", lambda t: t == "Rules", "the page to load again")
    focused = []
    for _ in range(3):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused.append(browser.execute_script("return document.activeElement.textContent"))
    assert focused == ["Skip to the content", "Plutino", "Overview"]
    log.check()
    assert len(list(shots.iterdir())) >= 14
