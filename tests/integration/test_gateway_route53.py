"""The Route53 gateway against moto: alias + owner TXT written, found and removed together."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.aws.clients import ClientFactory
from chalicelib.aws.errors import Conflict, NotFound
from chalicelib.aws.route53 import AliasRecord, Dns
from chalicelib.tools.infra import BaseInfrastructure
from tests.conftest import APP, DOMAIN

HOST = f"feature-a.{DOMAIN}"
OWNER = f"heritage=branchenv,app={APP},env=feature-a"


@pytest.fixture
def dns(infra: BaseInfrastructure, clients: ClientFactory) -> Dns:
    return Dns(clients.client("route53"), infra.hosted_zone_id)


def _records_at(clients: ClientFactory, infra: BaseInfrastructure, host: str) -> list[str]:
    answer = clients.client("route53").list_resource_record_sets(HostedZoneId=infra.hosted_zone_id)
    return sorted(r["Type"] for r in answer["ResourceRecordSets"] if r["Name"] == host + ".")


def test_upsert_writes_the_alias_and_its_quoted_owner_txt(
    dns: Dns, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    dns.upsert_alias(HOST, infra.alb_dns_name, infra.alb_zone_id, OWNER)

    answer = clients.client("route53").list_resource_record_sets(HostedZoneId=infra.hosted_zone_id)
    txt = next(r for r in answer["ResourceRecordSets"] if r["Type"] == "TXT")
    assert txt["ResourceRecords"] == [{"Value": f'"{OWNER}"'}]
    assert _records_at(clients, infra, HOST) == ["A", "TXT"]


def test_find_alias_returns_the_target_and_owner(dns: Dns, infra: BaseInfrastructure) -> None:
    dns.upsert_alias(HOST, infra.alb_dns_name, infra.alb_zone_id, OWNER)

    assert dns.find_alias(HOST) == AliasRecord(
        host=HOST, alb_dns_name=infra.alb_dns_name, alb_zone_id=infra.alb_zone_id, owner=OWNER
    )


def test_find_alias_of_an_unknown_host_is_none(dns: Dns, infra: BaseInfrastructure) -> None:
    dns.upsert_alias(f"other.{DOMAIN}", infra.alb_dns_name, infra.alb_zone_id, OWNER)

    assert dns.find_alias(HOST) is None


def test_find_alias_without_owner_txt_has_no_owner(
    dns: Dns, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    alias = {
        "Name": HOST,
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": infra.alb_zone_id,
            "DNSName": infra.alb_dns_name,
            "EvaluateTargetHealth": False,
        },
    }
    clients.client("route53").change_resource_record_sets(
        HostedZoneId=infra.hosted_zone_id,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": alias}]},
    )

    found = dns.find_alias(HOST)

    assert found is not None
    assert found.owner is None


def test_upsert_twice_keeps_one_alias_with_the_new_target(
    dns: Dns, infra: BaseInfrastructure
) -> None:
    dns.upsert_alias(HOST, "old-lb.elb.amazonaws.com", infra.alb_zone_id, OWNER)
    dns.upsert_alias(HOST, infra.alb_dns_name, infra.alb_zone_id, OWNER)

    found = dns.find_alias(HOST)
    assert found is not None
    assert found.alb_dns_name == infra.alb_dns_name


def test_delete_alias_removes_both_records(
    dns: Dns, infra: BaseInfrastructure, clients: ClientFactory
) -> None:
    dns.upsert_alias(HOST, infra.alb_dns_name, infra.alb_zone_id, OWNER)
    record = dns.find_alias(HOST)
    assert record is not None

    dns.delete_alias(record)

    assert _records_at(clients, infra, HOST) == []


def test_delete_alias_twice_is_not_an_error(dns: Dns, infra: BaseInfrastructure) -> None:
    dns.upsert_alias(HOST, infra.alb_dns_name, infra.alb_zone_id, OWNER)
    record = dns.find_alias(HOST)
    assert record is not None
    dns.delete_alias(record)

    dns.delete_alias(record)

    assert dns.find_alias(HOST) is None


def _stubbed_delete(error_message: str) -> tuple[Dns, Stubber]:
    # moto accepts a DELETE of a record that once existed (its change journal remembers it)
    # and answers InvalidInput for one that never did; Route53 answers InvalidChangeBatch.
    # The Stubber plays Route53's answer.
    client = boto3.client("route53", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(
        "change_resource_record_sets",
        service_error_code="InvalidChangeBatch",
        service_message=error_message,
        http_status_code=400,
    )
    stubber.activate()
    return Dns(client, "Z123"), stubber


def test_delete_alias_already_gone_in_route53_is_not_an_error() -> None:
    dns, stubber = _stubbed_delete(
        f"Tried to delete resource record set [name='{HOST}.', type='A'] but it was not found"
    )
    record = AliasRecord(HOST, "lb.elb.amazonaws.com", "Z2P70J7EXAMPLE", OWNER)

    dns.delete_alias(record)

    stubber.assert_no_pending_responses()


def test_delete_alias_with_stale_values_is_a_conflict() -> None:
    dns, _ = _stubbed_delete(
        f"Tried to delete resource record set [name='{HOST}.', type='A'] but the values "
        "provided do not match the current values"
    )
    record = AliasRecord(HOST, "lb.elb.amazonaws.com", "Z2P70J7EXAMPLE", OWNER)

    with pytest.raises(Conflict) as exc:
        dns.delete_alias(record)

    assert exc.value.code == "InvalidChangeBatch"


def test_list_owned_returns_only_this_apps_records(dns: Dns, infra: BaseInfrastructure) -> None:
    dns.upsert_alias(HOST, infra.alb_dns_name, infra.alb_zone_id, OWNER)
    other_app = "heritage=branchenv,app=other,env=feature-b"
    dns.upsert_alias(f"feature-b.{DOMAIN}", infra.alb_dns_name, infra.alb_zone_id, other_app)
    dns.upsert_alias(f"manual.{DOMAIN}", infra.alb_dns_name, infra.alb_zone_id, "hand-made")

    owned = dns.list_owned(APP)

    assert [r.host for r in owned] == [HOST]


def test_list_owned_pages_through_the_whole_zone(dns: Dns, infra: BaseInfrastructure) -> None:
    hosts = {f"env-{n:03}.{DOMAIN}" for n in range(160)}  # 320 records: two pages
    for host in hosts:
        owner = f"heritage=branchenv,app={APP},env={host.split('.')[0]}"
        dns.upsert_alias(host, infra.alb_dns_name, infra.alb_zone_id, owner)

    owned = dns.list_owned(APP)

    assert {r.host for r in owned} == hosts


def test_unknown_hosted_zone_is_not_found(clients: ClientFactory) -> None:
    dns = Dns(clients.client("route53"), "ZNOSUCHZONE")

    with pytest.raises(NotFound) as exc:
        dns.find_alias(HOST)

    assert exc.value.code == "NoSuchHostedZone"
