import gc

from nutrimatch import aws
from nutrimatch.settings import Settings


def test_a_client_follows_its_settings_endpoint_even_where_an_old_settings_object_lived():
    # A stopped stack's settings are freed and the next settings object usually takes its place (and id()) in
    # memory: a cache keyed by identity handed out a client bound to the stopped stack's endpoint.
    stopped = Settings(aws_endpoint_url="http://127.0.0.1:9001")
    aws.client("kms", stopped)
    place = id(stopped)
    del stopped
    gc.collect()
    running = [Settings(aws_endpoint_url="http://127.0.0.1:9002") for _ in range(50)]
    in_its_place = next((settings for settings in running if id(settings) == place), running[0])
    assert aws.client("kms", in_its_place).meta.endpoint_url == "http://127.0.0.1:9002"


def test_the_same_endpoint_shares_one_client():
    first = Settings(aws_endpoint_url="http://127.0.0.1:9100")
    second = Settings(aws_endpoint_url="http://127.0.0.1:9100")
    assert aws.client("sqs", first) is aws.client("sqs", second)
    assert aws.client("sqs", first) is not aws.client("s3", first)
