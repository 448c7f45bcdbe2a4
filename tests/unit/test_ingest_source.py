"""The planner's sequential reader: the bytes asked for, with one GET for a front-to-back scan."""

import hashlib
import io

from nutrimatch.ingest.source import S3Object, SequentialReader

DATA = bytes(range(256)) * 40


class FakeS3:
    """get_object with a Range header over DATA, counting the requests (an S3 stand-in)."""

    def __init__(self) -> None:
        self.gets: list[str] = []

    def get_object(self, Bucket: str, Key: str, Range: str) -> dict:
        self.gets.append(Range)
        first, last = (int(n) for n in Range.removeprefix("bytes=").split("-"))
        return {"Body": io.BytesIO(DATA[first:last + 1])}


def test_a_front_to_back_scan_is_one_request_even_after_reading_the_head_again():
    s3 = FakeS3()
    with SequentialReader(S3Object(s3, "bucket", "key"), len(DATA)) as reader:
        assert reader.read_range(0, 100) == DATA[:100]
        assert reader.read_range(3, 1003) == DATA[3:1003]  # re-reads part of the head, then goes on
        assert reader.read_range(1003, 5000) == DATA[1003:5000]
        assert reader.read_range(5000, len(DATA)) == DATA[5000:]
    assert s3.gets == [f"bytes=0-{len(DATA) - 1}"]


def test_a_jump_opens_a_new_stream_and_empty_ranges_read_nothing():
    s3 = FakeS3()
    with SequentialReader(S3Object(s3, "bucket", "key"), len(DATA)) as reader:
        assert reader.read_range(10, 10) == b""
        assert reader.read_range(0, 50) == DATA[:50]
        assert reader.read_range(4000, 4100) == DATA[4000:4100]
        assert reader.read_range(20, 30) == DATA[20:30]
    assert s3.gets == [f"bytes=0-{len(DATA) - 1}", f"bytes=4000-{len(DATA) - 1}", f"bytes=20-{len(DATA) - 1}"]


def test_a_front_to_back_scan_knows_the_objects_sha256():
    with SequentialReader(S3Object(FakeS3(), "bucket", "key"), len(DATA), digest=True) as reader:
        reader.read_range(0, 100)
        for start in range(50, len(DATA), 1000):  # re-reads part of the head, then goes on
            reader.read_range(start, min(start + 1000, len(DATA)))
        assert reader.sha256 == hashlib.sha256(DATA).hexdigest()


def test_a_scan_that_skipped_bytes_or_stopped_short_claims_no_sha256():
    with SequentialReader(S3Object(FakeS3(), "bucket", "key"), len(DATA), digest=True) as reader:
        reader.read_range(0, 100)
        reader.read_range(5000, len(DATA))  # a new GET from the middle
        assert reader.sha256 is None
    with SequentialReader(S3Object(FakeS3(), "bucket", "key"), len(DATA), digest=True) as reader:
        reader.read_range(0, 100)  # the object is not read to its end
        assert reader.sha256 is None
