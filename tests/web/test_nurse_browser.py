"""A nurse's use flow on a phone (390 × 844) in a real browser, and camera scanning of a GS1
DataMatrix: the camera is Chromium's fake capture device playing a Y4M file written by the test, with a
GS1 DataMatrix (FNC1 first, FNC1 between fields) drawn by ppf-datamatrix."""
import codecs
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from inventory.actors import Actor
from inventory.models import Consumption
from inventory.services.stock import transfer_stock
from tests.factories import gs1_udi
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, ENCOUNTER, PASSWORD, login, screenshot
from tests.web.test_operations_browser import scan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def in_department(world, cath_lab_store):
    """SN-A1 and SN-A2 moved into the cath lab's store, ready to be used."""
    transfer_stock(actor=Actor(user=world.keeper), hospital=cath_lab_store.hospital, to_location=cath_lab_store,
                   units=[world.units["SN-A1"], world.units["SN-A2"]], idempotency_key="to-cath")
    return cath_lab_store


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def in_view(locator) -> bool:
    box = locator.bounding_box()
    height = locator.page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize("language", ["zh-Hans", "en"])
def test_a_nurses_whole_use_flow_on_a_phone(page, world, in_department, language):
    page.set_viewport_size(PHONE)
    login(page, "nurse")
    if language == "en":
        page.context.add_cookies([{"name": "django_language", "value": "en",
                                   "url": page.evaluate("location.origin")}])
        page.reload()
    suffix = "" if language == "zh-Hans" else "-en"
    words = {"use": "使用登记", "next": "下一位患者", "pending": "等待推送"} if language == "zh-Hans" else {
        "use": "Use on a patient", "next": "Next patient", "pending": "Waiting to be sent"}

    # Her home leads to her work: use on a patient, her cabinet.
    expect(page.locator('a[data-link="cabinet"]')).to_contain_text(world.cabinet.name)
    assert fits_the_width(page)
    screenshot(page, f"nurse-home-phone{suffix}")
    page.locator('a[data-link="use"]').click()

    # 1. the patient: the wristband scanned into the focused field.
    encounter = page.locator("#id_encounter")
    expect(encounter).to_be_focused()
    screenshot(page, f"nurse-use-patient-phone{suffix}")
    scan(page, encounter, "ZY20261206021")
    expect(page.locator('[data-step="items"]')).to_have_attribute("data-encounter", "ZY20261206021")

    # 2. the items: the charge and the HIS status, in a card that fits the phone.
    field = page.locator("#use-scan")
    expect(field).to_be_focused()
    result = page.locator(".current-context [data-scan-result]")
    scan(page, field, gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A"))
    expect(result).to_have_class(re.compile(r"\bok\b"))
    expect(result).to_contain_text("¥1,200.00")
    use = Consumption.objects.get(unit__serial="SN-A1")
    card = page.locator(f'#uses tr[data-consumption="{use.pk}"]')
    expect(card.locator('[data-cell="amount"]')).to_have_text(re.compile(r"¥1,200\.00"))
    expect(card.locator("[data-his-status]")).to_have_text(words["pending"])
    for cell in ('[data-cell="amount"]', "[data-his-status]", '[data-action="refund"]'):
        box = card.locator(cell).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], cell
    assert fits_the_width(page)
    page.wait_for_timeout(1800)  # the new row's highlight fades
    screenshot(page, f"nurse-use-items-phone{suffix}")

    # The scan field stays reachable with the list scrolled: a second item, scanned at the bottom.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(100)
    assert page.evaluate("window.scrollY") > 0
    assert in_view(field)
    screenshot(page, f"nurse-use-scrolled-phone{suffix}", full_page=False)
    scan(page, field, gs1_udi(world.product.udi_di, serial="SN-A2", lot="LOT-A"))
    expect(page.locator("#uses tr[data-consumption]")).to_have_count(3)  # with the world's earlier use
    assert Consumption.objects.filter(encounter="ZY20261206021").count() == 2

    # Next patient: the context is gone, the wristband field waits, the department is kept.
    page.get_by_role("link", name=words["next"]).click()
    expect(page.locator('[data-step="patient"]')).to_be_visible()
    expect(page.locator("#id_encounter")).to_be_focused()
    expect(page.locator("#id_encounter")).to_have_value("")
    expect(page.locator("#id_department")).to_have_value(str(world.cabinet.department.pk))
    assert page.locator("#use-scan").count() == 0
    assert ENCOUNTER in page.locator("#uses").inner_text()


# --- camera scanning ---------------------------------------------------------------------------------

GS = "\x1d"
FNC1 = 232


def _encode_gs1_ascii(text: str) -> tuple[bytes, int]:
    """DataMatrix ASCII encodation of a GS1 element string: FNC1 first, each GS as FNC1."""
    words = [FNC1]
    index = 0
    while index < len(text):
        char = text[index]
        if char == GS:
            words.append(FNC1)
        elif char.isdigit() and index + 1 < len(text) and text[index + 1].isdigit():
            words.append(130 + int(text[index:index + 2]))
            index += 1
        else:
            words.append(ord(char) + 1)
        index += 1
    return bytes(words), len(words)


def _search(name: str):
    if name == "datamatrix.gs1":
        return codecs.CodecInfo(_encode_gs1_ascii, None, name="datamatrix.gs1")
    return None


codecs.register(_search)


def gs1_datamatrix(element_string: str, module: int = 8) -> "Image":  # noqa: F821
    """A GS1 DataMatrix of the element string (GS between fields), black on white with a quiet zone."""
    from PIL import Image
    from ppf.datamatrix import DataMatrix

    symbol = DataMatrix(element_string, codecs=["ascii"])
    symbol.codecs = ["datamatrix.gs1"]  # ppf-datamatrix has no FNC1: our ASCII encodation with it
    rows = symbol.matrix
    size = (len(rows[0]) + 4) * module, (len(rows) + 4) * module
    image = Image.new("L", size, 255)
    for y, row in enumerate(rows):
        for x, bit in enumerate(row):
            if bit:
                image.paste(0, ((x + 2) * module, (y + 2) * module, (x + 3) * module, (y + 3) * module))
    return image


def write_y4m(path: Path, image, *, width: int = 640, height: int = 480, frames: int = 10) -> None:
    """A Y4M video (4:2:0) of the image on a light grey background, for Chromium's fake camera."""
    from PIL import Image

    frame = Image.new("L", (width, height), 230)
    frame.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + luma + chroma + chroma)


@pytest.fixture
def camera_browser(chromium, tmp_path, world):
    """A Chromium of its own whose camera plays a GS1 DataMatrix of SN-A1 (the shared one has no camera)."""
    chromium.get()  # Playwright, started once per session (its sync API cannot be started twice in a thread)
    element_string = gs1_udi(world.product.udi_di, serial="SN-A1", lot="LOT-A").removeprefix("]d2")
    assert GS in element_string
    video = tmp_path / "datamatrix.y4m"
    write_y4m(video, gs1_datamatrix(element_string))
    browser = chromium.playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ])
    yield browser
    browser.close()


@pytest.mark.parametrize("language", ["zh-Hans", "en"])
def test_a_gs1_datamatrix_read_by_the_camera_is_used_on_the_patient(camera_browser, live_server, world,
                                                                    in_department, language):
    context = camera_browser.new_context(base_url=live_server.url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                         viewport=PHONE)
    context.set_default_timeout(20_000)
    own = live_server.url
    outside: list[str] = []
    served: list[str] = []

    def guard(route) -> None:
        served.append(route.request.url)
        if route.request.url.startswith(("http://", "https://")) and not route.request.url.startswith(own):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    if language == "en":
        context.add_cookies([{"name": "django_language", "value": "en", "url": own}])
    page = context.new_page()
    try:
        login(page, "nurse", PASSWORD)
        page.goto(f"/use/?encounter=ZY20261206033&department={world.cabinet.department.pk}")
        camera = page.locator('[data-camera-scan="use-scan"]')
        expect(camera).to_be_visible()  # a camera can be used (localhost is a secure origin)
        camera.click()
        panel = page.locator("[data-camera-panel]")
        expect(page.locator("body")).to_have_attribute("data-camera-decoder", re.compile(r"^(native|zxing)$"))

        result = page.locator(".current-context [data-scan-result]")
        expect(result).to_have_class(re.compile(r"\bok\b"))  # read, sent through the scan path, recorded
        expect(panel).to_have_count(0)  # the camera stops after one code
        expect(result).to_contain_text("¥1,200.00")
        use = Consumption.objects.get(unit__serial="SN-A1")
        assert use.encounter == "ZY20261206033"
        expect(page.locator(f'#uses tr[data-consumption="{use.pk}"] [data-his-status]')).to_be_visible()
        if page.locator("body").get_attribute("data-camera-decoder") == "zxing":
            assert any(url.endswith("/static/web/vendor/zxing-library-0.23.0.min.js") for url in served)
        assert outside == []
        page.wait_for_timeout(1800)
        screenshot(page, "nurse-camera-used-phone" + ("" if language == "zh-Hans" else "-en"))
    finally:
        context.close()
