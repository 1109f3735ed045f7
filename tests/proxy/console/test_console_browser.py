"""A real headless Chromium (driven through Debian's chromedriver) signs in to the console
through a real OpenID Connect provider, reads the connections table, kills a connection with
the confirmation, and the next callback through the running proxy lands at legacy; a viewer
can't flip; a post without the CSRF token and a stale preview are refused.

Chromium and chromedriver are system packages: CI installs them (.ci/run) and this test fails
there without them; elsewhere it is reported as skipped, with how to install them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flags import FileRolloutStore
from flags.rollout_change import set_canary
from proxy.demo.idp import DemoIdP
from proxy.demo.loopback_server import LoopbackServer
from tests.flags.redis_support import wait_until
from tests.proxy.console.console_env import ConsoleEnv, oidc_console, running_console
from tests.proxy.console.oidc_provider import OidcProvider
from tests.proxy.console.test_console_actions import callback_lands, wait_for_route
from tests.proxy.console.test_console_map import add_to_file, live_version, map_in_redis, route_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = "apt-get install chromium chromium-driver"

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="module")
def chrome_paths() -> tuple[str, str]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium and chromedriver are required in CI ({INSTALL})")
        pytest.skip(f"chromium / chromedriver not installed here ({INSTALL}); CI runs this test")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def env(
    tmp_path: Path, providers: dict[str, LoopbackServer], op: OidcProvider
) -> Iterator[ConsoleEnv]:
    with running_console(tmp_path, providers, oidc_console(op)) as running:
        yield running


@pytest.fixture
def browser(chrome_paths: tuple[str, str], tmp_path: Path) -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chrome_paths[0]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",  # a laptop
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chrome_paths[1]), options=options)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(10)  # find_element waits for the next page's element
    yield driver
    driver.quit()


def console_url(env: ConsoleEnv, path: str) -> str:
    # localhost: Chromium keeps Secure cookies there over plain HTTP (a secure context)
    return f"http://localhost:{env.console.port}{path}"


def sign_in(browser: WebDriver, env: ConsoleEnv, op: OidcProvider, user: dict[str, object]) -> None:
    op.user = user
    browser.get(console_url(env, "/console/connections"))
    assert browser.current_url.startswith(console_url(env, "/console/connections")), (
        browser.page_source[:500]
    )
    assert "Signed in as" in browser.find_element(By.CLASS_NAME, "who").text


def apply_and_wait(browser: WebDriver, path: str = "/console/actions/apply") -> str:
    """Click the confirmation form's button; the page the console answers with."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, "apply").click()
    WebDriverWait(browser, 20).until(lambda b: path in b.current_url)
    WebDriverWait(browser, 20).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )
    return browser.page_source


def table_routes(browser: WebDriver) -> dict[str, str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#connections tbody tr")
    return {
        row.find_element(By.CSS_SELECTOR, "th a").text: row.get_attribute("data-route") or ""
        for row in rows
    }


def test_an_operator_kills_a_connection_in_the_browser_and_the_proxy_follows(
    browser: WebDriver, env: ConsoleEnv, op: OidcProvider, idps: dict[str, DemoIdP]
) -> None:
    store = FileRolloutStore(env.dir / "flags.yaml")
    store.write(
        0,
        set_canary("acme", True)(store.read()),
        actor="setup",
        reason="canary",
        action="canary_add",
    )
    assert wait_for_route(env, idps["acme"], "new") == "new"

    sign_in(browser, env, op, {"email": "ops@example.com", "groups": ["sre-operators"]})
    routes = table_routes(browser)
    assert routes["acme"] == "new" and routes["globex"] == "legacy" and len(routes) == 6
    acme_row = browser.find_element(By.XPATH, "//tr[th/a[text()='acme']]")
    assert "canary" in acme_row.text

    acme_row.find_element(By.CSS_SELECTOR, "a[aria-label='Kill acme']").click()
    assert "Would move back to legacy (1): acme" in browser.find_element(By.TAG_NAME, "main").text
    confirm_label = browser.find_element(By.CSS_SELECTOR, "label[for=confirm]").text
    assert confirm_label == "I confirm: this moves acme"
    browser.find_element(By.ID, "reason").send_keys("login errors at acme")
    browser.find_element(By.ID, "apply").click()  # refused by the browser: not confirmed yet
    assert "/actions/preview" in browser.current_url
    browser.find_element(By.ID, "confirm").click()
    apply_and_wait(browser)
    outcome = browser.find_element(By.ID, "outcome").text
    assert "Moved to legacy: acme" in outcome and "by ops@example.com" in outcome

    assert wait_for_route(env, idps["acme"], "legacy") == "legacy"
    assert callback_lands(env, idps["acme"]) == "legacy"
    record = store.history(1)[0]
    assert (record.actor, record.action, record.reason) == (
        "ops@example.com",
        "disable",
        "login errors at acme",
    )
    browser.get(console_url(env, "/console/connections?route=legacy"))
    assert "acme" in table_routes(browser)


def test_a_post_without_the_csrf_token_and_a_stale_preview_are_refused(
    browser: WebDriver, env: ConsoleEnv, op: OidcProvider
) -> None:
    store = FileRolloutStore(env.dir / "flags.yaml")
    sign_in(browser, env, op, {"email": "ops@example.com"})

    browser.get(console_url(env, "/console/actions/preview?action=kill_all"))
    browser.execute_script("document.querySelector('form.confirm input[name=csrf_token]').remove()")
    browser.find_element(By.ID, "reason").send_keys("forged")
    browser.find_element(By.ID, "confirm").click()
    assert "missing or wrong CSRF token" in apply_and_wait(browser)
    assert store.read().kill_all is False

    browser.get(console_url(env, "/console/actions/preview?action=stage&percent=100"))
    assert "Would move to the new provider (5)" in browser.page_source
    store.write(
        0,
        set_canary("hooli", True)(store.read()),
        actor="someone",
        reason="meanwhile",
        action="canary_add",
    )
    browser.find_element(By.ID, "reason").send_keys("all in")
    browser.find_element(By.ID, "confirm").click()
    assert "the state changed since the preview" in apply_and_wait(browser)
    assert store.read().stage_percent == 0 and store.read().version == 1


def test_a_viewer_sees_the_table_but_cannot_flip(
    browser: WebDriver, env: ConsoleEnv, op: OidcProvider
) -> None:
    sign_in(browser, env, op, {"email": "watcher@example.com"})
    assert len(table_routes(browser)) == 6
    assert browser.find_elements(By.CSS_SELECTOR, "a.action") == []
    browser.get(console_url(env, "/console/actions/preview?action=disable&connection=acme"))
    assert "only operators may change the rollout" in browser.page_source
    assert FileRolloutStore(env.dir / "flags.yaml").read().version == 0


def test_an_operator_pushes_a_new_connection_from_the_map_page_and_the_proxy_routes_it(
    browser: WebDriver, tmp_path: Path, providers: dict[str, LoopbackServer], op: OidcProvider
) -> None:
    with map_in_redis(tmp_path, providers, oidc_console(op)) as env:
        add_to_file(env, "newco")
        op.user = {"email": "ops@example.com", "groups": ["sre-operators"]}
        base = f"http://localhost:{env.console.port}"
        browser.get(base + "/console/map")
        assert browser.current_url.startswith(base + "/console/map"), browser.page_source[:500]
        main = browser.find_element(By.TAG_NAME, "main").text
        assert "Added: newco" in main and "newco: legacy (not_in_map) → new (stage_in)" in main

        browser.find_element(By.LINK_TEXT, "Preview the push").click()
        confirm_label = browser.find_element(By.CSS_SELECTOR, "label[for=confirm]").text
        assert confirm_label == "I confirm: this moves newco"
        browser.find_element(By.ID, "reason").send_keys("import newco")
        browser.find_element(By.ID, "confirm").click()
        apply_and_wait(browser, "/console/map/apply")
        outcome = browser.find_element(By.ID, "outcome").text
        assert "Pushed version 2" in outcome and "by ops@example.com" in outcome

        assert live_version(env) == 2
        wait_until(lambda: route_of(env, "newco") == "new", deadline=10)
        browser.get(base + "/console/audit?kind=map")
        rows = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
        assert [r.get_attribute("data-kind") for r in rows] == ["map", "map"]
        assert "ops@example.com" in rows[0].text and "import newco" in rows[0].text
