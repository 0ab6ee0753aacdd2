"""Loading the TOML configuration: good files, every kind of error, and secrets refused unseen."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import pytest

from entra_sync.config.load import (
    ConfigFindingsError,
    config_summary,
    connection_kwargs,
    load_config,
    loads_config,
    require_credentials,
    require_source,
    require_tenant,
)
from reconciler.errors import ConfigError
from reconciler.generate.naming import DEFAULT_TEMPLATES
from reconciler.settings import GRAPH_ENDPOINTS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "entra-sync.example.toml"
TENANT = 'tenant_id = "contoso.onmicrosoft.com"\nclient_id = "11111111-2222-3333-4444-555555555555"\n'
SECRET = "Zx8~Q-very-secret-value-42"


def write(tmp_path: Path, text: str, name: str = "entra-sync.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigFindingsError) as err:
        loads_config(text, file="/srv/school/entra-sync.toml")
    return {f.path: f.message for f in err.value.findings}


# -- good files --------------------------------------------------------------------------------------


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.tenant is None and config.source is None
    assert config.credentials.method is None
    assert (config.sync.groups, config.sync.administrative_units, config.sync.teams) == (True, True, False)
    assert config.sync.teams_for == ("classes",)
    assert config.sync.class_team_template == "educationClass"
    assert config.sync.mentor_team_template == "standard"
    assert config.users.match == "userPrincipalName"
    assert config.schedule.times == ("04:00", "08:00", "12:00")
    assert config.schedule.timezone == "Europe/London"
    assert config.history.path == tmp_path / "entra-sync-history.sqlite"
    assert config.removal.teams == "archive"
    assert config.safety.max_delete_fraction == 0.3 and config.safety.max_deletes == 500
    assert config.naming.class_group.display_name == DEFAULT_TEMPLATES["class_group"]["display_name"]


def test_full_file_is_read(tmp_path: Path) -> None:
    text = f"""
[tenant]
{TENANT}cloud = "usgov"
graph_url = "http://127.0.0.1:8765/"

[credentials]
certificate_path = "certs/sync.pem"
certificate_password_env = "CERT_PASSWORD"

[sync]
groups = true
administrative_units = false
teams = true
teams_for = ["classes", "mentor_groups"]
mentor_team_template = "educationClass"
group_visibility = "HiddenMembership"

[source]
kind = "oneroster"
path = "../data/oneroster.zip"
user_reference = "email"
academic_year = "2026-27"
upn_domain = "oak.example"

[users]
match = "mail"
reference = "{{{{ person.email }}}}"

[naming.class_group]
display_name = "{{{{ school.short_name }}}} {{{{ class.name }}}} {{{{ academic_year }}}}"

[removal]
groups = "keep"
teams = "keep"

[safety]
max_delete_fraction = 1
max_deletes = 20
min_objects_for_fraction = 0

[schedule]
times = ["7:30", "04:00", "13:05", "4:00"]
timezone = "America/New_York"

[history]
path = "/var/lib/entra-sync/history.sqlite"
"""
    etc = tmp_path / "etc"
    etc.mkdir()
    config = load_config(write(etc, text))
    assert config.tenant is not None
    assert config.tenant.cloud == "usgov"
    assert config.tenant.graph_endpoint == "http://127.0.0.1:8765"
    assert config.credentials.method == "certificate"
    assert config.credentials.certificate_path == tmp_path / "etc" / "certs" / "sync.pem"
    assert config.credentials.certificate_password_env == "CERT_PASSWORD"
    assert config.sync.teams_for == ("classes", "mentor_groups")
    assert config.sync.group_visibility == "HiddenMembership"
    assert config.source is not None
    assert config.source.path == tmp_path / "data" / "oneroster.zip"
    assert config.source.user_reference == "email" and config.source.upn_domain == "oak.example"
    assert config.users.match == "mail" and config.users.reference == "{{ person.email }}"
    assert config.naming.class_group.display_name.startswith("{{ school.short_name }}")
    assert config.naming.class_group.mail_nickname == DEFAULT_TEMPLATES["class_group"]["mail_nickname"]
    assert (config.removal.groups, config.removal.teams, config.removal.administrative_units) == (
        "keep", "keep", "delete",
    )  # fmt: skip
    assert config.safety.max_delete_fraction == 1.0 and config.safety.max_deletes == 20
    assert config.schedule.times == ("04:00", "07:30", "13:05")
    assert config.schedule.local_times()[1] == time(7, 30)
    assert config.history.path == Path("/var/lib/entra-sync/history.sqlite")


def test_cloud_gives_the_graph_endpoint() -> None:
    config = loads_config(f'[tenant]\n{TENANT}cloud = "china"\n')
    assert config.tenant is not None
    assert config.tenant.graph_endpoint == GRAPH_ENDPOINTS["china"]
    assert config.tenant.authority_host == "login.chinacloudapi.cn"


@pytest.mark.parametrize(
    ("line", "method"),
    [
        ('client_secret_env = "ENTRA_SYNC_CLIENT_SECRET"', "client_secret_env"),
        ('client_secret_file = "/run/secrets/entra"', "client_secret_file"),
        (
            'federated_token_file = "/var/run/secrets/azure/tokens/azure-identity-token"',
            "federated_token_file",
        ),
        ('managed_identity = "system"', "managed_identity"),
        ('managed_identity = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"', "managed_identity"),
        ('access_token_env = "GRAPH_TOKEN"', "access_token_env"),
    ],
)
def test_each_credential_method(line: str, method: str) -> None:
    config = loads_config(f"[credentials]\n{line}\n")
    assert config.credentials.method == method
    assert require_credentials(config) is config.credentials


def test_example_file_loads_and_documents_every_key() -> None:
    config = load_config(EXAMPLE)
    assert config.tenant is not None and config.source is not None
    assert config.credentials.method == "client_secret_env"
    text = EXAMPLE.read_text(encoding="utf-8")
    from entra_sync.config.sections import SECTIONS

    for section, keys in SECTIONS.items():
        assert f"[{section}" in text, section
        for key in keys:
            assert f"{key} =" in text or f"[naming.{key}]" in text, f"{section}.{key} is not in the example"


# -- errors ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as err:
        load_config(tmp_path / "nope.toml")
    assert err.value.file == str(tmp_path / "nope.toml")


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[sync]\ngroups = true\nteams = yes\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "line 3" in str(err.value) and "column" in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_keys_with_suggestions() -> None:
    found = problems(f'[tennant]\nx = 1\n[sync]\nteems = true\n[tenant]\n{TENANT}timezone = "UTC"\n')
    assert "did you mean 'tenant'" in found["tennant"]
    assert "did you mean 'teams'" in found["sync.teems"]
    assert "belongs in [schedule]" in found["tenant.timezone"]


def test_unknown_naming_tables_and_keys() -> None:
    found = problems('[naming.class]\ndisplay_name = "x"\n[naming.au_mentors]\nmail_nickname = "x"\n')
    assert "did you mean 'class_group'" in found["naming.class"]
    assert "unknown key" in found["naming.au_mentors.mail_nickname"]


def test_wrong_types_say_expected_and_got() -> None:
    found = problems(
        '[sync]\ngroups = "yes"\nteams_for = "classes"\n'
        '[safety]\nmax_deletes = 1.5\nmax_delete_fraction = "x"\n'
        "[schedule]\ntimes = [4]\n[tenant]\ntenant_id = 5\nclient_id = true\n"
    )
    assert found["sync.groups"] == "expected a boolean (true or false), got string"
    assert found["sync.teams_for"] == "expected an array of strings, got string"
    assert found["safety.max_deletes"] == "expected an integer, got float"
    assert "got string" in found["safety.max_delete_fraction"]
    assert found["schedule.times[0]"] == "expected a string, got integer"
    assert found["tenant.tenant_id"] == "expected a string, got integer"
    assert found["tenant.client_id"] == "expected a string, got boolean"


def test_section_that_is_not_a_table() -> None:
    assert problems('sync = "on"\n')["sync"] == "expected a table ([sync]), got string"


def test_invalid_values() -> None:
    found = problems(
        '[tenant]\ntenant_id = "not a tenant"\nclient_id = "abc"\ncloud = "globl"\n'
        'graph_url = "http://graph.example.com"\n'
        '[sync]\nteams_for = ["classes", "houses", "classes"]\nclass_team_template = "class"\n'
        '[source]\nkind = "csv"\npath = "x"\nacademic_year = "2026/27"\n'
        '[users]\nmatch = "upn"\n[removal]\ngroups = "archive"\n'
        "[safety]\nmax_member_removal_fraction = 1.5\nmax_deletes = -1\n"
        '[schedule]\ntimes = ["24:00", "noon"]\ntimezone = "Europe/Londn"\n'
    )
    assert "GUID" in found["tenant.tenant_id"]
    assert "GUID" in found["tenant.client_id"]
    assert "did you mean 'global'" in found["tenant.cloud"]
    assert "https" in found["tenant.graph_url"]
    assert "'houses'" in found["sync.teams_for[1]"]
    assert "listed twice" in found["sync.teams_for[2]"]
    assert "'standard', 'educationClass'" in found["sync.class_team_template"]
    assert "'realsmart', 'oneroster', 'sds'" in found["source.kind"]
    assert "2026-27" in found["source.academic_year"]
    assert "userPrincipalName" in found["users.match"]
    assert "'delete', 'keep'" in found["removal.groups"]
    assert "between 0 and 1" in found["safety.max_member_removal_fraction"]
    assert "at least 0" in found["safety.max_deletes"]
    assert "HH:MM" in found["schedule.times[0]"] and "HH:MM" in found["schedule.times[1]"]
    assert "did you mean 'Europe/London'" in found["schedule.timezone"]


def test_academic_year_must_be_consecutive() -> None:
    assert (
        "consecutive"
        in problems('[source]\nkind = "sds"\npath = "x"\nacademic_year = "2026-28"\n')["source.academic_year"]
    )


def test_required_keys() -> None:
    found = problems("[tenant]\ncloud = \"global\"\n[source]\npath = 'x'\n")
    assert found["tenant.tenant_id"] == "is required"
    assert found["tenant.client_id"] == "is required"
    assert found["source.kind"] == "is required"


def test_teams_need_groups() -> None:
    assert "set groups = true" in problems("[sync]\ngroups = false\nteams = true\n")["sync.teams"]
    assert "is empty" in problems("[sync]\nteams = true\nteams_for = []\n")["sync.teams_for"]
    # teams off with groups off is fine
    assert loads_config("[sync]\ngroups = false\n").sync.groups is False


def test_credentials_choose_one() -> None:
    found = problems('[credentials]\nclient_secret_env = "A"\nmanaged_identity = "system"\n')
    assert "choose one" in found["credentials"]
    found = problems('[credentials]\ncertificate_password_env = "P"\nmanaged_identity = "me"\n')
    assert "only applies with certificate_path" in found["credentials.certificate_password_env"]
    assert "GUID" in found["credentials.managed_identity"]


def test_template_errors_are_found_at_load_time() -> None:
    found = problems(
        '[naming.class_group]\ndisplay_name = "{{ clas.name }}"\ndescription = "{{ class.name "\n'
        '[naming.au_year_group]\ndisplay_name = "{{ class.name }}"\n[users]\nreference = "{{ person.mail"\n'
    )
    assert "unknown variable 'clas'" in found["naming.class_group.display_name"]
    assert "syntax error on line 1" in found["naming.class_group.description"]
    assert "unknown variable 'class'" in found["naming.au_year_group.display_name"]
    assert "syntax error" in found["users.reference"]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[sync]\ngroups = 1\n[schedule]\ntimezone = "Mars/Base"\n[oops]\n')
    with pytest.raises(ConfigFindingsError) as err:
        load_config(path)
    assert len(err.value.findings) == 3
    message = str(err.value)
    assert message.startswith(f"{path}: 3 problems")
    assert "oops" in message and "sync.groups" in message and "schedule.timezone" in message


def test_single_problem_names_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        loads_config("[sync]\ngroups = 1\n", file="c.toml")
    assert err.value.key == "sync.groups"
    assert str(err.value) == "c.toml: sync.groups: expected a boolean (true or false), got integer"


def test_require_helpers_explain_what_is_missing() -> None:
    config = loads_config("")
    with pytest.raises(ConfigError, match=r"\[tenant\]"):
        require_tenant(config)
    with pytest.raises(ConfigError, match=r"\[source\]"):
        require_source(config)
    with pytest.raises(ConfigError, match="client_secret_env"):
        require_credentials(config)


# -- secrets -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'[credentials]\nclient_secret = "{SECRET}"\n',
        f'client_secret = "{SECRET}"\n',
        f'[tenant]\n{TENANT}password = "{SECRET}"\n',
        f'[credentials]\ncertificate_password = "{SECRET}"\n',
        f'[credentials]\naccess_token = "{SECRET}"\n',
        f'[source]\nkind = "sds"\npath = "x"\napi_key = "{SECRET}"\n',
    ],
)
def test_a_secret_in_the_file_is_refused_and_never_echoed(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        loads_config(text)
    message = str(err.value)
    assert "secret" in message and "environment variable" in message
    assert SECRET not in message
    assert SECRET not in repr(err.value.args)


def test_a_pasted_secret_in_an_env_name_is_refused_and_never_echoed() -> None:
    for key in ("client_secret_env", "access_token_env"):
        with pytest.raises(ConfigError) as err:
            loads_config(f'[credentials]\n{key} = "{SECRET}"\n')
        assert "environment variable name" in str(err.value)
        assert SECRET not in str(err.value)


def test_a_secret_in_a_managed_identity_or_tenant_is_not_echoed() -> None:
    for text in (
        f'[credentials]\nmanaged_identity = "{SECRET}"\n',
        f'[tenant]\ntenant_id = "{SECRET}"\nclient_id = "{SECRET}"\n',
        f'[tenant]\n{TENANT}graph_url = "https://u:{SECRET}@graph.example"\n',
    ):
        with pytest.raises(ConfigError) as err:
            loads_config(text)
        assert SECRET not in str(err.value)


def test_config_repr_holds_only_references() -> None:
    config = loads_config(
        f'[tenant]\n{TENANT}[credentials]\nclient_secret_env = "ENTRA_SYNC_CLIENT_SECRET"\n'
    )
    assert "ENTRA_SYNC_CLIENT_SECRET" in repr(config)
    assert config.credentials.client_secret_env == "ENTRA_SYNC_CLIENT_SECRET"


# -- what the CLI and history use --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "ref"),
    [
        ('client_secret_env = "ENTRA_SYNC_CLIENT_SECRET"', "client_secret", "ENTRA_SYNC_CLIENT_SECRET"),
        ('client_secret_file = "/run/secrets/entra"', "client_secret_file", "/run/secrets/entra"),
        ('certificate_path = "/etc/cert.pem"', "certificate", "/etc/cert.pem"),
        ('federated_token_file = "/var/token"', "federated", "/var/token"),
        ('managed_identity = "system"', "managed_identity", "system"),
        ('access_token_env = "GRAPH_TOKEN"', "access_token", "GRAPH_TOKEN"),
    ],
)
def test_connection_kwargs_build_connection_settings(line: str, kind: str, ref: str) -> None:
    connect = pytest.importorskip("providers.entra.connect")
    config = loads_config(f'[tenant]\n{TENANT}graph_url = "http://127.0.0.1:8080"\n[credentials]\n{line}\n')
    kwargs = connection_kwargs(config)
    assert kwargs["credential"] == kind and kwargs["credential_ref"] == ref
    settings = connect.ConnectionSettings(**kwargs, env={})
    assert settings.graph_base_url == "http://127.0.0.1:8080/v1.0"
    assert settings.tenant_id == "contoso.onmicrosoft.com"


def test_connection_kwargs_need_tenant_and_credentials() -> None:
    with pytest.raises(ConfigError, match=r"\[tenant\]"):
        connection_kwargs(loads_config('[credentials]\nmanaged_identity = "system"\n'))
    with pytest.raises(ConfigError, match="no credentials"):
        connection_kwargs(loads_config(f"[tenant]\n{TENANT}"))


def test_config_summary_is_json_and_holds_no_reference() -> None:
    config = loads_config(f'[tenant]\n{TENANT}[credentials]\nclient_secret_env = "MY_SECRET_VAR"\n')
    summary = config_summary(config)
    text = json.dumps(summary)
    assert "MY_SECRET_VAR" not in text
    assert summary["credential"] == "client_secret_env"
    assert summary["sync"]["groups"] is True
    assert summary["tenant"]["cloud"] == "global"
