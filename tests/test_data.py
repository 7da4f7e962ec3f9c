"""Data: download, wrapper stripping, caching, offline error, and the positional split."""

import pytest
import utils

# A stand-in for the book: its title, then enough text to pass the loader's length check.
CLEAN = "Alice’s Adventures in Wonderland\n\nCHAPTER I.\nDown the Rabbit-Hole\n\n" + (
    "Alice was beginning to get very tired.\n" * 3000
).strip()
WRAPPED = (
    "\ufeffThe Project Gutenberg eBook of Alice's Adventures in Wonderland\r\n"
    "Licence blurb that must not reach the model.\r\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK ALICE'S ADVENTURES IN WONDERLAND ***\r\n\r\n\r\n"
    + CLEAN.replace("\n", "\r\n")
    + "\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK ALICE'S ADVENTURES IN WONDERLAND ***\r\n"
    "More licence text.\r\n"
)


@pytest.fixture(autouse=True)
def no_book_override(monkeypatch):
    monkeypatch.delenv(utils.BOOK_ENV, raising=False)


def test_strip_gutenberg_removes_header_footer_bom_and_crlf():
    assert utils.strip_gutenberg(WRAPPED) == CLEAN


def test_strip_gutenberg_rejects_text_without_markers():
    with pytest.raises(ValueError, match="START OF"):
        utils.strip_gutenberg("just some text")


def test_download_is_cleaned_and_cached(tmp_path):
    cache = tmp_path / "data" / "alice.txt"
    calls = []

    def fake_fetch(url):
        calls.append(url)
        return WRAPPED

    assert utils.load_alice(cache, urls=["https://example.org/a"], fetch=fake_fetch) == CLEAN
    assert cache.read_text(encoding="utf-8") == CLEAN
    assert list(cache.parent.iterdir()) == [cache]  # no temporary file left behind
    # A second call reads the cache and does not download again.
    assert utils.load_alice(cache, urls=["https://example.org/a"], fetch=fake_fetch) == CLEAN
    assert calls == ["https://example.org/a"]


def test_second_url_is_tried_when_the_first_fails(tmp_path):
    def flaky_fetch(url):
        if "first" in url:
            raise OSError("connection timed out")
        return WRAPPED

    book = utils.load_alice(
        tmp_path / "b.txt", urls=["https://first", "https://second"], fetch=flaky_fetch
    )
    assert book == CLEAN


def test_offline_error_names_url_and_cache_path(tmp_path):
    def offline(url):
        raise OSError("no network")

    cache = tmp_path / "alice.txt"
    with pytest.raises(FileNotFoundError) as error:
        utils.load_alice(cache, fetch=offline)
    message = str(error.value)
    assert utils.GUTENBERG_URLS[0] in message
    assert str(cache.resolve()) in message
    assert not cache.exists()


def test_environment_variable_points_at_a_local_copy(tmp_path, monkeypatch):
    copy = tmp_path / "my_alice.txt"
    copy.write_text(CLEAN, encoding="utf-8")
    monkeypatch.setenv(utils.BOOK_ENV, str(copy))
    assert utils.load_alice(tmp_path / "unused.txt", fetch=pytest.fail) == CLEAN
    copy.write_text(WRAPPED, encoding="utf-8")  # a raw Gutenberg download is cleaned too
    assert utils.load_alice(tmp_path / "unused.txt", fetch=pytest.fail) == CLEAN
    monkeypatch.setenv(utils.BOOK_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        utils.load_alice(tmp_path / "unused.txt", fetch=pytest.fail)


def test_split_is_by_position_last_ten_percent_held_out():
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    train, val = utils.split_text(text)
    assert (len(train), len(val)) == (900, 100)
    assert train + val == text
    with pytest.raises(ValueError):
        utils.split_text(text, 1.5)


def test_the_real_book_loads_clean():
    book = utils.load_alice()
    assert book.startswith("[Illustration]") and book.endswith("THE END")
    assert "PROJECT GUTENBERG" not in book.upper()
