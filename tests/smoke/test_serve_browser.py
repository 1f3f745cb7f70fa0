"""The web page of ``seca serve`` in a real browser (headless Chromium driven by selenium), as a user uses it:
the header says what is served, images dropped in are classified, a new class is taught and followed to done,
the server's refusals are shown in the page's alerts, and the token is asked for when the server wants one."""

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="seca serve needs the serve extra: pip install 'seca[serve]'")
pytest.importorskip("selenium", reason="the browser test needs selenium")

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip(
        "no headless browser here (chromium and chromedriver, e.g. apt install chromium-driver)",
        allow_module_level=True,
    )

import uvicorn  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from seca.cli import main  # noqa: E402
from seca.serve.app import create_app  # noqa: E402
from seca.serve.jobs import ModelServer  # noqa: E402

from ..conftest import write_shapes_folder  # noqa: E402

FIRST = ["orange star", "red circle"]
FINISHED = ("done", "failed", "cancelled")


@pytest.fixture
def model(tmp_path):
    """A tiny model that knows two classes from one task, evaluated (so the history chart has a point)."""
    path = tmp_path / "model.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=1"]) == 0
    assert (
        main(
            [
                "learn",
                str(path),
                "--data",
                str(write_shapes_folder(tmp_path / "first", FIRST, split="train")),
                "--eval",
                str(write_shapes_folder(tmp_path / "first-test", FIRST, split="test")),
            ]
        )
        == 0
    )
    return path


class Served:
    """``seca serve`` of ``path`` in this process, on a free loopback port, in a background thread."""

    def __init__(self, path: Path, token=None):
        self.model_server = ModelServer(path, device="cpu")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        config = uvicorn.Config(create_app(self.model_server, token=token), log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> "Served":
        self.thread.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("health")
                return self
            except OSError:
                if time.monotonic() > deadline or not self.thread.is_alive():
                    raise
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.model_server.stop()

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=5) as answer:
            return json.loads(answer.read())


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def texts(driver, css: str) -> list[str]:
    """The text of each element ``css`` selects, read in one go (the page re-renders its lists as it polls)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent.trim())", css
    )


def text(driver, css: str) -> str:
    found = texts(driver, css)
    assert found, f"nothing on the page matches {css}"
    return found[0]


def wait(driver, condition, timeout=20, message=""):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d), message)


def open_page(driver, served: Served, classes: int) -> None:
    driver.get(served.url)
    wait(driver, lambda d: text(d, "#h-classes") == str(classes), message="the header never showed the classes")


def teach(driver, name: str, images: list[Path], tests: list[Path] = ()) -> None:
    """Fill the first class row of the Teach form and submit it."""
    row = driver.find_element(By.CSS_SELECTOR, "#class-rows .class-row")
    field = row.find_element(By.CSS_SELECTOR, ".class-name")
    field.clear()
    field.send_keys(name)
    row.find_element(By.CSS_SELECTOR, ".class-images").send_keys("\n".join(map(str, images)))
    if tests:
        row.find_element(By.CSS_SELECTOR, ".class-tests").send_keys("\n".join(map(str, tests)))
    driver.find_element(By.ID, "learn-button").click()


def alert_says(driver, region: str, words: str, timeout=20) -> str:
    wait(driver, lambda d: words in text(d, region), timeout, f"{region} never said '{words}'")
    return text(driver, region)


def console_errors(driver) -> list[str]:
    """The page's console errors, less the browser's own line for each 4xx answer the page then shows."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]
    ]


def screenshot(driver, tmp_path: Path, name: str) -> None:
    """The whole page (the window stretched to its height for the shot)."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], height + 200))
    try:
        driver.save_screenshot(str(tmp_path / name))
    finally:
        driver.set_window_size(size["width"], size["height"])
    if os.environ.get("SECA_SCREENSHOT_DIR"):
        folder = Path(os.environ["SECA_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, folder / name)


def test_the_page_predicts_teaches_and_shows_refusals(browser, model, tmp_path):
    driver = browser
    new = write_shapes_folder(tmp_path / "new", ["blue square"], per_class=4, split="train") / "blue_square"
    new_tests = write_shapes_folder(tmp_path / "new-test", ["blue square"], per_class=3, split="test") / "blue_square"
    with Served(model) as served:
        open_page(driver, served, classes=2)
        assert "2 classes" in text(driver, "#summary")
        assert not driver.find_element(By.ID, "token").is_displayed()  # this server asks for no token
        assert sorted(texts(driver, ".class-chip")) == FIRST
        wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, ".history-svg circle"),
            message="the history chart never drew the first task's accuracy",
        )

        # predict: two images chosen at once, each shown with its top classes
        first = sorted((tmp_path / "first").glob("*/*.png"))
        driver.find_element(By.ID, "predict-files").send_keys(f"{first[0]}\n{first[-1]}")
        wait(
            driver,
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".prediction")) == 2,
            message="the page never showed two predictions",
        )
        assert all(label in FIRST for label in texts(driver, ".prediction .top-label"))
        assert texts(driver, ".prediction .file") == [first[0].name, first[-1].name]
        assert all(v.endswith("%") for v in texts(driver, ".prediction .bar-value"))
        assert len(driver.find_elements(By.CSS_SELECTOR, ".prediction img.thumb")) == 2

        # teach a new class, with test images, and follow the job to done
        teach(driver, "blue square", sorted(new.glob("*.png")), sorted(new_tests.glob("*.png")))
        wait(
            driver,
            lambda d: d.find_element(By.ID, "job").get_attribute("data-state") in FINISHED,
            120,
            "the job never finished",
        )
        result = text(driver, "#job-result")
        assert driver.find_element(By.ID, "job").get_attribute("data-state") == "done", result
        assert "Accuracy" in result and "%" in result
        wait(driver, lambda d: "blue square" in texts(d, ".class-chip"), message="the classes never showed the class")
        assert served.get("classes")["classes"] == FIRST + ["blue square"]
        assert served.get("classes")["tasks"] == [FIRST, ["blue square"]]
        wait(driver, lambda d: text(d, "#h-classes") == "3", message="the header never showed 3 classes")
        wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) == 2)
        assert len(driver.find_elements(By.CSS_SELECTOR, ".history-svg circle")) == 2
        assert "done" in texts(driver, "#jobs .badge")
        screenshot(driver, tmp_path, "serve.png")

        # a refusal: the server's sentence, in the alert beside the form
        teach(driver, "red circle", first[:2])
        said = alert_says(driver, "#learn-error", "already knows")
        assert "red circle" in said
        assert served.get("classes")["classes"] == FIRST + ["blue square"]

        # a check in the page itself: a class without images is asked for before anything is sent
        driver.find_element(By.CSS_SELECTOR, "#class-rows .class-name").clear()
        driver.find_element(By.CSS_SELECTOR, "#class-rows .class-name").send_keys("green star")
        driver.execute_script("document.querySelector('#class-rows .class-images').value = ''")
        driver.find_element(By.ID, "learn-button").click()
        alert_says(driver, "#learn-error", "needs training images")

        # nothing came from anywhere but the server, and no script failed
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(url.startswith(served.url) for url in resources), resources
        assert console_errors(driver) == []


def test_the_page_asks_for_the_token(browser, model, tmp_path):
    driver = browser
    new = write_shapes_folder(tmp_path / "new", ["blue square"], per_class=4, split="train") / "blue_square"
    with Served(model, token="s3cret") as served:
        open_page(driver, served, classes=2)
        driver.execute_script("sessionStorage.clear()")
        driver.refresh()
        open_page(driver, served, classes=2)
        token = driver.find_element(By.ID, "token")
        wait(driver, lambda d: token.is_displayed(), message="the token field never appeared")

        teach(driver, "blue square", sorted(new.glob("*.png")))
        assert "Authorization: Bearer TOKEN" in alert_says(driver, "#learn-error", "token")
        assert served.get("jobs")["jobs"] == []

        token.send_keys("s3cret")
        driver.find_element(By.ID, "epochs").send_keys("1000")  # long enough to act while it trains
        driver.find_element(By.ID, "learn-button").click()
        wait(
            driver,
            lambda d: d.find_element(By.ID, "job").get_attribute("data-state") == "training",
            message="the job was never shown training",
        )
        assert text(driver, "#learn-error") == ""
        assert [j["classes"] for j in served.get("jobs")["jobs"]] == [["blue square"]]
        assert driver.execute_script("return sessionStorage.getItem('seca-serve-token')") == "s3cret"

        # a refusal while the page polls the job stays shown
        driver.find_element(By.ID, "learn-button").click()
        alert_says(driver, "#learn-error", "being learned")
        time.sleep(1.5)  # three polls
        assert "being learned" in text(driver, "#learn-error")

        # cancel (with the token): the model stays as it was
        driver.find_element(By.ID, "job-cancel").click()
        wait(
            driver,
            lambda d: d.find_element(By.ID, "job").get_attribute("data-state") == "cancelled",
            60,
            "the job was never shown cancelled",
        )
        assert not driver.find_element(By.ID, "job-cancel").is_displayed()
        assert served.get("classes")["classes"] == FIRST
        assert console_errors(driver) == []
