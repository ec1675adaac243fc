"""The announcement file beside the lock."""
from engine.service import announce


def test_write_then_read(tmp_path):
    assert announce.read(tmp_path) is None
    ann = announce.Announcement("127.0.0.1", 1234, 42, "loci", previous_pid=7, previous_clean=False)
    announce.write(tmp_path, ann)
    assert announce.read(tmp_path) == ann and ann.url == "http://127.0.0.1:1234"
    (tmp_path / announce.ANNOUNCE_FILE).write_text("{broken")
    assert announce.read(tmp_path) is None
