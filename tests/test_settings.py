"""Configuration: defaults, validation, and errors that name the key to fix."""

from __future__ import annotations

import pytest

from conftest import PROJECT, REGION, TOPIC
from sysprep_guard.endpoints import default_endpoint
from sysprep_guard.errors import ConfigError
from sysprep_guard.settings import Settings, load_settings


def settings(**values: str) -> Settings:
    base = {"REGION": REGION, "PROJECT_ID": PROJECT, "SMN_TOPIC_URN": TOPIC}
    merged = {k: v for k, v in {**base, **values}.items() if v is not None}
    return load_settings(merged.get)


def test_defaults_derive_the_endpoints_from_the_region() -> None:
    s = settings()
    assert s.workspace_endpoint == "https://workspace.ap-southeast-1.myhuaweicloud.com"
    assert s.smn_endpoint == "https://smn.ap-southeast-1.myhuaweicloud.com"
    assert (s.dry_run, s.require_hibernate, s.require_update_route, s.job_wait_seconds) == (False, False, False, 600)
    assert s.min_sysprep_version is None


def test_project_id_falls_back_to_the_runtime_variable() -> None:
    values = {"REGION": REGION, "RUNTIME_PROJECT_ID": PROJECT, "SMN_TOPIC_URN": TOPIC}
    assert load_settings(values.get).project_id == PROJECT


@pytest.mark.parametrize(("text", "value"), [("true", True), ("YES", True), ("1", True), ("no", False), ("0", False)])
def test_booleans_accept_the_usual_spellings(text: str, value: bool) -> None:
    assert settings(REQUIRE_HIBERNATE=text).require_hibernate is value


def test_empty_values_count_as_unset() -> None:
    assert settings(MIN_SYSPREP_VERSION="  ", DRY_RUN="").dry_run is False


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"REGION": None}, "REGION"),
        ({"PROJECT_ID": None}, "RUNTIME_PROJECT_ID"),
        ({"SMN_TOPIC_URN": None}, "SMN_TOPIC_URN"),
        ({"SMN_TOPIC_URN": "arn:aws:sns:x"}, "SMN_TOPIC_URN='arn:aws:sns:x'"),
        ({"SMN_TOPIC_URN": f"urn:smn:cn-north-4:{PROJECT}:t"}, "region 'cn-north-4'"),
        ({"MIN_SYSPREP_VERSION": "3.x"}, "MIN_SYSPREP_VERSION='3.x'"),
        ({"DRY_RUN": "maybe"}, "DRY_RUN='maybe'"),
        ({"JOB_WAIT_SECONDS": "soon"}, "JOB_WAIT_SECONDS='soon'"),
        ({"JOB_WAIT_SECONDS": "-1"}, "JOB_WAIT_SECONDS"),
        ({"ENDPOINTS": "workspace=http://workspace.example.com"}, "loopback"),
        ({"ENDPOINTS": "smn.example.com"}, "ENDPOINTS"),
        ({"ENDPOINTS": "smn=https://smn.example.com/v2"}, "without a path"),
        ({"ENDPOINTS": "smn=https://user:hunter2@smn.example.com"}, "credentials in the URL"),
        ({"ENDPOINTS": "smn=https://smn.example.com:99999"}, "port"),
        ({"ENDPOINTS": "sms=https://smn.example.com"}, "services among workspace, smn"),
        ({"NOTIFY": "changes"}, "needs STATE_BUCKET"),
        ({"STATE_BUCKET": "Sysprep_State"}, "OBS bucket name"),
        ({"FULL_REPORT_DAY": "funday"}, "FULL_REPORT_DAY"),
    ],
)
def test_bad_values_fail_with_the_key_named(values: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(**values)
    assert names in str(err.value)
    assert "environment variables" in str(err.value)


def test_the_topic_is_optional_in_a_dry_run() -> None:
    assert settings(SMN_TOPIC_URN=None, DRY_RUN="true").smn_topic_urn is None


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:9", "[::1]:8080"])
def test_plain_http_is_accepted_for_loopback_only(host: str) -> None:
    assert settings(ENDPOINTS=f"http://{host}/").workspace_endpoint == f"http://{host}"


def test_a_service_override_is_the_functions_region_and_one_url_is_everywhere() -> None:
    s = settings(ENDPOINTS="workspace=https://workspace.example.com")
    assert s.endpoint("workspace") == "https://workspace.example.com"
    # A target in another region is called in its own region, never at this region's override.
    assert s.endpoint("workspace", "eu-west-101") == default_endpoint("workspace", "eu-west-101")
    emulator = settings(ENDPOINTS="http://127.0.0.1:8080")
    assert emulator.endpoint("workspace", "eu-west-101") == emulator.endpoint("iam") == "http://127.0.0.1:8080"


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        settings(DRY_RUN="maybe", REQUIRE_HIBERNATE="sure")
    assert "DRY_RUN" in str(err.value) and "REQUIRE_HIBERNATE" in str(err.value)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://admin:hunter2@workspace.example.com",
        "https://admin:hun/ter2@workspace.example.com",
        "http://a:hunter2@x@127.0.0.1",
    ],
)
def test_a_password_in_an_endpoint_is_not_repeated_in_the_error(endpoint: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(ENDPOINTS=endpoint)
    assert "hunter2" not in str(err.value) and "hun" not in str(err.value) and "admin" not in str(err.value)
    assert "credentials in the URL are not accepted" in str(err.value)


@pytest.mark.parametrize("endpoint", ["https://work space.example.com", "https://wörk.example.com", "https://a..b.com"])
def test_a_host_that_is_no_dns_name_fails_configuration(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="not a DNS name"):
        settings(ENDPOINTS=endpoint)
