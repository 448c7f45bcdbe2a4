import json
import time
from pathlib import Path

from nutrimatch import aws
from nutrimatch.local.lambdas import invoke, load_handler
from nutrimatch.local.pump import EventPump

FIXTURES = Path(__file__).parents[1] / "fixtures" / "functions"


def test_the_pump_feeds_a_powertools_batch_handler_and_honours_partial_failures(aws_resources):
    settings = aws_resources
    sqs = aws.client("sqs", settings)
    dlq = sqs.create_queue(QueueName="pump-test-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="pump-test", Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
    })["QueueUrl"]
    for body in ({"n": 1}, {"n": 2, "fail": True}, {"n": 3}):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))

    module_seen = load_handler("batch_echo", FIXTURES).__globals__["seen"]
    module_seen.clear()
    pump = EventPump(settings, {"pump-test": "batch_echo"},
                     lambda name, event: invoke(name, event, FIXTURES), wait_seconds=0)
    deadline = time.monotonic() + 20
    dead: list[dict] = []
    while time.monotonic() < deadline and not dead:
        pump.drain_once("pump-test", "batch_echo")
        dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        time.sleep(0.3)

    assert sorted(p["n"] for p in module_seen) == [1, 3]
    assert [json.loads(m["Body"]) for m in dead] == [{"n": 2, "fail": True}]
    remaining = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert remaining["Attributes"]["ApproximateNumberOfMessages"] == "0"
