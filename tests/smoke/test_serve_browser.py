"""The web page of ``seca serve`` in a real browser (headless Chromium driven by selenium), as a user uses it:
the header says what is served, images dropped in are classified, a new class is taught and followed to done,
the server's refusals are shown in the page's alerts, and the token is asked for when the server wants one.
Its numbers are ones a user can trust (issue 31): a result no better than guessing ends in a warning beside
chance and the majority class, undecided and stale predictions say so, the loss terms are in words, the history
chart draws the accuracy matrix (one line per test set), and nothing scrolls sideways down to 360 pixels.

With ``SECA_SCREENSHOTS=DIR`` the tests save what they see there as PNG files (loaded, predicting, below-chance,
history-matrix, narrow-360); without it they write none."""

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


def taught(driver, name: str, images: list[Path], tests: list[Path] = (), timeout=120) -> str:
    """Teach a class (as :func:`teach`) and follow its job to the end; its last state."""
    before = texts(driver, "#job-id")
    teach(driver, name, images, tests)
    wait(
        driver,
        lambda d: (
            texts(d, "#job-id") != before and d.find_element(By.ID, "job").get_attribute("data-state") in FINISHED
        ),
        timeout,
        f"the job of '{name}' never finished",
    )
    return driver.find_element(By.ID, "job").get_attribute("data-state")


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


def colour(driver, variable: str) -> str:
    """The page's CSS colour ``variable`` as the browser computes it (rgb(...))."""
    return driver.execute_script(
        "const p = document.createElement('p'); p.style.background = `var(${arguments[0]})`;"
        "document.body.append(p); const c = getComputedStyle(p).backgroundColor; p.remove(); return c",
        variable,
    )


def background(driver, css: str) -> str:
    return driver.execute_script("return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", css)


def screenshot(driver, name: str) -> None:
    """The whole page as ``$SECA_SCREENSHOTS/name`` (the window stretched to its height for the shot); nothing
    without the variable."""
    if not os.environ.get("SECA_SCREENSHOTS"):
        return
    folder = Path(os.environ["SECA_SCREENSHOTS"])
    folder.mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    width = driver.execute_script("return window.innerWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], height + 200))
    try:
        wait(driver, lambda d: d.execute_script("return window.innerWidth") == width)
        driver.save_screenshot(str(folder / name))
    finally:
        driver.set_window_size(size["width"], size["height"])


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
            lambda d: d.find_elements(By.CSS_SELECTOR, ".history-svg [data-series='task-1'] circle"),
            message="the history chart never drew the first task's accuracy",
        )
        health = served.get("health")
        assert text(driver, "#h-chance") == f"{health['chance']:.2f}%"
        assert text(driver, "#h-kept").startswith(f"{health['kept_tests']['images']} images")
        screenshot(driver, "loaded.png")

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
        state = taught(driver, "blue square", sorted(new.glob("*.png")), sorted(new_tests.glob("*.png")))
        result = text(driver, "#job-result")
        assert state == "done", result
        assert "Accuracy" in result and "%" in result
        # the box's colour and words follow the server's verdict: warning, or done with the same yardsticks
        ev = served.get(f"jobs/{text(driver, '#job-id')}")["entry"]["eval"]
        assert f"Accuracy {ev['accuracy']:.2f}% — chance {ev['chance']:.2f}%" in result
        assert f"always-the-most-frequent-class {ev['majority']:.2f}%" in result
        verdict = driver.find_element(By.ID, "job").get_attribute("data-verdict")
        assert verdict == ("warning" if ev["warning"] else "ok"), (verdict, ev["warning"])
        wait(driver, lambda d: "blue square" in texts(d, ".class-chip"), message="the classes never showed the class")
        assert served.get("classes")["classes"] == FIRST + ["blue square"]
        assert served.get("classes")["tasks"] == [FIRST, ["blue square"]]
        wait(driver, lambda d: text(d, "#h-classes") == "3", message="the header never showed 3 classes")
        wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) == 2)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".history-svg [data-series='task-2'] circle"))
        assert "done" in texts(driver, "#jobs .badge")

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


LONG_CLASS = "a-class-name-so-long-that-it-never-fits-on-the-narrowest-phone-screen-in-one-line"
LONG_FILE = "a_file_name_far_too_long_to_fit_on_one_line_of_a_phone_screen_without_wrapping_{}.png"
WIDTHS = (360, 420, 768, 1280)


# The innermost elements whose right edge passes the page's width (arguments[0]), as "tag.class" names.
WIDER = """
const clipped = (e) => {  // inside a box that scrolls or clips its own overflow
  for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== "visible") return true;
  }
  return false;
};
const wide = Array.from(document.body.querySelectorAll("*"))
  .filter(e => e.getBoundingClientRect().right > arguments[0] + 0.5 && !clipped(e));
return wide.filter(e => !wide.some(o => o !== e && e.contains(o)))
  .map(e => `${e.tagName.toLowerCase()}#${e.id}.${String(e.className.baseVal ?? e.className).replace(/ /g, ".")}`);
"""


# Whether the history chart is drawn for its width: one unit of its drawing about one pixel, so its text stays
# readable from phone to desktop (within the 260 to 560 units it is drawn at).
CHART_AT_SIZE = """
const chart = document.querySelector(".history-svg");
if (!chart) return true;
const units = chart.viewBox.baseVal.width, pixels = chart.getBoundingClientRect().width;
return Math.abs(units - pixels) < 2 || (units === 260 && pixels < 260) || (units === 560 && pixels > 560);
"""


def sideways_scroll(driver) -> dict[int, tuple]:
    """The widths of WIDTHS at which the page scrolls sideways: {width: (scrollWidth, clientWidth, elements)}."""
    found = {}
    try:
        for width in WIDTHS:
            driver.set_window_size(width, 1000)
            wait(driver, lambda d, w=width: d.execute_script("return window.innerWidth") == w)
            wait(driver, lambda d: d.execute_script(CHART_AT_SIZE), message=f"the chart was not redrawn at {width}")
            scroll, client = driver.execute_script(
                "const e = document.documentElement; return [e.scrollWidth, e.clientWidth]"
            )
            if scroll > client:  # which elements stick out, for the failure's message
                found[width] = (scroll, client, driver.execute_script(WIDER, client))
            if width == 360:
                screenshot(driver, "narrow-360.png")
    finally:
        driver.set_window_size(1280, 1600)
    return found


def test_predictions_say_when_undecided_or_stale_and_the_history_draws_the_matrix(
    browser, model, tmp_path, monkeypatch
):
    """Undecided and stale predictions say so, loss terms are in words, three learns with test images draw one
    line per task and the all-seen line, the table shows the accuracy matrix, and no width scrolls sideways."""
    import seca.api
    import seca.serve.app

    driver = browser
    train = write_shapes_folder(tmp_path / "train", ["blue square", "green triangle"], per_class=4, split="train")
    tests = write_shapes_folder(tmp_path / "tests", ["blue square", "green triangle"], per_class=3, split="test")

    # two images, one undecided: the threshold is set between their margins, whatever the random weights
    pool = sorted(
        write_shapes_folder(tmp_path / "pool", ["red star", "orange circle", "purple heart"], 2).rglob("*.png")
    )
    with Served(model) as served:
        margins = {p: q.margin for p, q in zip(pool, served.model_server.model.predict([str(p) for p in pool]))}
        low, high = min(pool, key=margins.get), max(pool, key=margins.get)
        assert margins[low] < margins[high], margins
        threshold = (margins[low] + margins[high]) / 2
        monkeypatch.setattr(seca.api, "UNDECIDED_MARGIN", threshold)
        monkeypatch.setattr(seca.serve.app, "UNDECIDED_MARGIN", threshold)
        chosen = []
        for k, image in enumerate((low, high)):
            chosen.append(tmp_path / LONG_FILE.format(k))
            shutil.copy(image, chosen[-1])

        open_page(driver, served, classes=2)
        driver.find_element(By.ID, "predict-files").send_keys("\n".join(map(str, chosen)))
        wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".prediction")) == 2, message="no predictions")
        items = driver.find_elements(By.CSS_SELECTOR, ".prediction")
        assert [i.get_attribute("class").split() for i in items] == [["prediction", "undecided"], ["prediction"]]
        points = f"{100 * threshold:.2f}".rstrip("0").rstrip(".")  # as few digits as it needs
        assert f"undecided: its top two classes are within {points} points" in text(driver, ".undecided-note")
        assert not items[0].find_elements(By.CSS_SELECTOR, "strong")  # not in bold as if certain
        assert items[1].find_element(By.CSS_SELECTOR, "strong.top-label")
        assert len(texts(driver, ".undecided-note")) == 1
        assert not driver.find_element(By.ID, "predict-stale").is_displayed()
        screenshot(driver, "predicting.png")
        made_by = served.get("health")["model_version"]

        # task 2: while it trains and when done, the loss terms are in words, with the term and value on hover
        blue = sorted((train / "blue_square").glob("*")), sorted((tests / "blue_square").glob("*"))
        assert taught(driver, "blue square", *blue) == "done"
        job = served.get(f"jobs/{text(driver, '#job-id')}")
        losses = driver.execute_script(
            "return Array.from(document.querySelectorAll('#job-detail .loss'),"
            " e => [e.dataset.term, e.textContent, e.title])"
        )
        assert [term for term, _, _ in losses] == list(job["losses"]) and "kd" in job["losses"], losses
        for term, shown, title in losses:
            assert shown.startswith(job["loss_words"].get(term, term) + " "), (term, shown)
            name, value = title.split(" ")
            assert name == term and float(value) == pytest.approx(job["losses"][term], rel=0.01)
        assert "keeping old knowledge" in text(driver, "#job-detail")

        # the model grew: the predictions on screen are marked stale, and predicting again renews them
        assert served.get("health")["model_version"] != made_by
        wait(driver, lambda d: d.find_element(By.ID, "predict-stale").is_displayed(), message="never marked stale")
        assert "made by an earlier version of the model: predict again" in text(driver, "#predict-stale")
        assert len(driver.find_elements(By.CSS_SELECTOR, ".prediction.stale")) == 2
        assert float(driver.execute_script("return getComputedStyle(arguments[0]).opacity", items[1])) < 1
        driver.find_element(By.ID, "predict-again").click()
        wait(driver, lambda d: not d.find_element(By.ID, "predict-stale").is_displayed(), message="still stale")
        assert texts(driver, ".prediction .file") == [p.name for p in chosen]
        assert not driver.find_elements(By.CSS_SELECTOR, ".prediction.stale")

        # task 3, of a class with a very long name
        green = sorted((train / "green_triangle").glob("*")), sorted((tests / "green_triangle").glob("*"))
        assert taught(driver, LONG_CLASS, *green) == "done"
        wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")) == 3)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".history-svg [data-series='task-3'] circle"))
        matrix = served.get("history")["matrix"]
        rows = matrix["acc_matrix"]
        assert [len(row) for row in rows] == [1, 2, 3] and all(a is not None for row in rows for a in row), rows

        # the chart: one line per task, on its own test images after each later task, and the all-seen line
        for j in range(3):
            drawn = driver.execute_script(
                "const dots = `.history-svg [data-series='task-${arguments[0]}'] circle`;"
                "return Array.from(document.querySelectorAll(dots),"
                " c => [Number(c.dataset.step), Number(c.dataset.value)])",
                j + 1,
            )
            assert drawn == [[s + 1, rows[s][j]] for s in range(j, 3)], (j, drawn)
            lines = driver.find_elements(By.CSS_SELECTOR, f".history-svg [data-series='task-{j + 1}'] polyline")
            assert len(lines) == (1 if j < 2 else 0)  # the last task has one point yet: no line
        all_seen = driver.execute_script(
            "return Array.from(document.querySelectorAll(\".history-svg [data-series='all'] circle\"),"
            " c => Number(c.dataset.value))"
        )
        assert all_seen == [a for a in matrix["acc_per_step"] if a is not None] and len(all_seen) == 3
        assert len(driver.find_elements(By.CSS_SELECTOR, ".history-svg [data-series='all'] polyline")) == 1
        assert driver.find_elements(By.CSS_SELECTOR, ".history-svg [data-series='chance'] polyline")
        label = driver.find_element(By.CSS_SELECTOR, ".history-svg").get_attribute("aria-label")
        assert "task 1's test images" in label and "chance" in label
        assert texts(driver, ".legend li")[-2:] == ["all seen classes", "chance"]
        assert len(texts(driver, ".legend li")) == 5

        # the table: each row's per-task cell is the matrix's row, and chance beside the accuracy
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('#history-table tbody tr'),"
            " r => Array.from(r.querySelectorAll('.per-task .cell'), c => c.textContent))"
        )
        assert cells == [[f"{a:.2f}" for a in row] for row in rows]
        assert texts(driver, "#history-table .chance") == [f"chance {c:.2f}%" for c in matrix["chance"]]
        screenshot(driver, "history-matrix.png")

        wide = sideways_scroll(driver)
        assert wide == {}, wide
        assert console_errors(driver) == []


@pytest.fixture
def shapes_model(shapes_clip_weights, tmp_path):
    """A model on the pretrained offline CLIP that knows two classes well, its test images kept."""
    path = tmp_path / "shapes.safetensors"
    assert main(["new", str(path), "--backbone", "seca-shapes", "--set", "train.epochs=1"]) == 0
    first = write_shapes_folder(tmp_path / "first", FIRST, per_class=4, split="train")
    tests = write_shapes_folder(tmp_path / "first-test", FIRST, split="test")
    assert main(["learn", str(path), "--data", str(first), "--eval", str(tests)]) == 0
    return path


def test_a_task_below_chance_ends_in_a_warning(browser, shapes_model, tmp_path):
    """Test images of 'cyan square' that are drawings of 'orange star': the model answers the star, the new task
    scores below chance, and the job's box says so in the warning style, beside chance and the majority class."""
    driver = browser
    train = write_shapes_folder(tmp_path / "cyan", ["cyan square"], per_class=4, split="train") / "cyan_square"
    stars = sorted((tmp_path / "first" / "orange_star").glob("*.png"))[:3]  # not among the kept test images
    with Served(shapes_model) as served:
        open_page(driver, served, classes=2)
        assert taught(driver, "cyan square", sorted(train.glob("*.png")), stars) == "done"
        ev = served.get(f"jobs/{text(driver, '#job-id')}")["entry"]["eval"]
        assert ev["per_task"][-1] < ev["chance"] and ev["warning"], ev

        box = driver.find_element(By.ID, "job")
        result = text(driver, "#job-result")
        assert box.get_attribute("data-verdict") == "warning"
        assert ev["warning"] in result
        assert (
            f"Accuracy {ev['accuracy']:.2f}% — chance {ev['chance']:.2f}%, "
            f"always-the-most-frequent-class {ev['majority']:.2f}%"
        ) in result
        assert f"The new task's own test images: {ev['per_task'][-1]:.2f}%" in result
        assert all(words in result for words in ("another backbone", "more training images", "more epochs"))
        assert background(driver, "#job") == colour(driver, "--warn-soft") != colour(driver, "--ok-soft")
        assert "Done, with a warning" in text(driver, "#job-state")
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#history-table tr.warned .warn-mark"))
        assert "⚠" in text(driver, "#jobs li")
        screenshot(driver, "below-chance.png")

        # a task learned well ends in the green of done, with the same yardsticks; its test images not kept
        kept = served.get("health")["kept_tests"]
        hearts = write_shapes_folder(tmp_path / "hearts", ["purple heart"], per_class=4, split="train")
        heart_tests = write_shapes_folder(tmp_path / "hearts-test", ["purple heart"], per_class=3, split="test")
        driver.find_element(By.ID, "keep-eval").click()
        assert not driver.find_element(By.ID, "keep-eval").is_selected()
        hearts = sorted(hearts.rglob("*.png")), sorted(heart_tests.rglob("*.png"))
        assert taught(driver, "purple heart", *hearts) == "done"
        ev = served.get(f"jobs/{text(driver, '#job-id')}")["entry"]["eval"]
        assert ev["warning"] is None and ev["per_task"][-1] > ev["chance"], ev
        assert box.get_attribute("data-verdict") == "ok"
        assert background(driver, "#job") == colour(driver, "--ok-soft")
        result = text(driver, "#job-result")
        assert f"Accuracy {ev['accuracy']:.2f}% — chance {ev['chance']:.2f}%" in result
        assert "What to try" not in result
        assert served.get("health")["kept_tests"] == kept
        assert console_errors(driver) == []


def test_without_test_images_the_page_says_how_to_measure(browser, tmp_path):
    """A model learned without test images: the chart says how to get a measurement, and a job taught without
    them says no accuracy was measured."""
    driver = browser
    path = tmp_path / "model.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=1"]) == 0
    first = write_shapes_folder(tmp_path / "first", FIRST, split="train")
    assert main(["learn", str(path), "--data", str(first)]) == 0
    new = write_shapes_folder(tmp_path / "new", ["blue square"], split="train")
    with Served(path) as served:
        open_page(driver, served, classes=2)
        wait(driver, lambda d: "with test images" in text(d, "#history-chart"), message="no advice in the chart")
        assert not driver.find_elements(By.CSS_SELECTOR, "#history-chart svg")
        assert texts(driver, "#history-table .accuracy") == ["not measured"]
        assert taught(driver, "blue square", sorted(new.rglob("*.png"))) == "done"
        assert driver.find_element(By.ID, "job").get_attribute("data-verdict") == "unmeasured"
        assert "no accuracy was measured" in text(driver, "#job-result")
        assert "Accuracy" not in text(driver, "#job-result")
        assert console_errors(driver) == []
