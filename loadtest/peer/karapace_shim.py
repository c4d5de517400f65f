"""Launch Karapace's REST proxy, unmodified, with runtime patches to kafka-python.

Run by loadtest/peer/karapace as `python karapace_shim.py CONFIG.json`, from
the venv it builds (Karapace's source is on that venv's path). Each patch says
why it is there; none changes what Karapace does with a real Kafka broker.
"""
import sys

import kafka.admin.client as admin_client
import kafka.consumer.group as kafka_consumer_group
import kafka.coordinator.base as coordinator_base
import kafka.errors as kafka_errors


# 1. Karapace 2.0.x was built against Aiven's fork of kafka-python (a git
#    pin in its requirements-dev.txt, not on PyPI); we install upstream 2.0.2.
#    Its REST proxy uses two fork-only features of KafkaAdminClient:
#    a `kafka_client` config (upstream rejects it: "Unrecognized configs")
#    and `_send_request_to_least_loaded_node`. Both are small; re-add them.
_admin_init = admin_client.KafkaAdminClient.__init__


def _admin_init_with_kafka_client(self, **configs):
    client_class = configs.pop("kafka_client", None)
    if client_class is None:
        return _admin_init(self, **configs)
    # Upstream's __init__ builds `KafkaClient(...)` from its module globals:
    # swap the class in for the duration (this runs once, at start-up).
    saved = admin_client.KafkaClient
    admin_client.KafkaClient = client_class
    try:
        return _admin_init(self, **configs)
    finally:
        admin_client.KafkaClient = saved


def _send_request_to_least_loaded_node(self, request):
    # As in the fork: wait until some broker is connected, then send there.
    node_id = self._client.least_loaded_node()
    while not self._client.ready(node_id):
        self._client.poll()
        if self._client.cluster.broker_metadata(node_id) is None:
            node_id = self._client.least_loaded_node()
    return self._client.send(node_id, request)


admin_client.KafkaAdminClient.__init__ = _admin_init_with_kafka_client
admin_client.KafkaAdminClient._send_request_to_least_loaded_node = _send_request_to_least_loaded_node


# 2. tansu 0.6.0 answers a JoinGroup with an empty member_id by
#    MEMBER_ID_REQUIRED (error 79) plus a member_id to use, at every
#    JoinGroup version; Kafka does so only from v4 on (KIP-394), and
#    kafka-python 2.0.2 speaks v0-v2 and predates that error: it reads 79 as
#    "UnknownError -1", so every consumer's first subscribe/fetch through
#    Karapace fails with a 500. Teach it what clients from KIP-394 on do
#    (kafka-python 2.1 does the same): keep the member_id the broker gave
#    and join again.
class MemberIdRequiredError(kafka_errors.BrokerResponseError):
    errno = 79
    message = "MEMBER_ID_REQUIRED"
    description = "The group member needs to have a valid member id before actually entering a consumer group"
    retriable = True


kafka_errors.kafka_errors.setdefault(MemberIdRequiredError.errno, MemberIdRequiredError)
_handle_join_group_response = coordinator_base.BaseCoordinator._handle_join_group_response


def _handle_join_group_response_member_id_required(self, future, send_time, response):
    if response.error_code != MemberIdRequiredError.errno:
        return _handle_join_group_response(self, future, send_time, response)
    with self._lock:
        self._generation = coordinator_base.Generation(
            coordinator_base.Generation.NO_GENERATION.generation_id, response.member_id, None
        )
    # Retriable: ensure_active_group() sleeps retry_backoff_ms (100 ms) and
    # sends the JoinGroup again, now with the member_id.
    future.failure(MemberIdRequiredError(response.member_id))


coordinator_base.BaseCoordinator._handle_join_group_response = _handle_join_group_response_member_id_required


# 3. Karapace's default `fetch_min_bytes` is -1 (and a consumer may ask for
#    -1 in `fetch.min.bytes`), which kafka-python sends as FetchRequest
#    min_bytes. Kafka reads any value <= 0 as "answer at once"; tansu 0.6.0
#    converts it to u32, fails ("Storage(TryFromInt(...))" in its log) and
#    drops the connection, so every fetch through Karapace comes back empty
#    after the full timeout. Send 0 instead, which means the same to Kafka.
_consumer_init = kafka_consumer_group.KafkaConsumer.__init__


def _consumer_init_nonnegative_min_bytes(self, *topics, **configs):
    if configs.get("fetch_min_bytes") is not None and configs["fetch_min_bytes"] < 0:
        configs["fetch_min_bytes"] = 0
    return _consumer_init(self, *topics, **configs)


kafka_consumer_group.KafkaConsumer.__init__ = _consumer_init_nonnegative_min_bytes


def main():
    from karapace.karapace_all import main as karapace_main
    sys.argv = ["karapace"] + sys.argv[1:]
    return karapace_main()


if __name__ == "__main__":
    sys.exit(main())
