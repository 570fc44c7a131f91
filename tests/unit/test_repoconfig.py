"""branchenv.yml: schema errors with line and key, placeholders, branch filters, merging."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.settings import Settings, SettingsError
from chalicelib.engine.policy import OperatorPolicy
from chalicelib.engine.repoconfig import (
    PLACEHOLDERS,
    BranchFilter,
    CommonConfig,
    ConfigError,
    RepoConfig,
    RepoDefaults,
    ServiceConfig,
    glob_match,
    load_repo_config,
    placeholder_values,
    render_env,
    render_template,
    repo_defaults,
)

DEFAULTS = RepoDefaults()
SSM_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/db-url"
PREFIX = "arn:aws:ssm:us-east-1:123456789012:parameter/demo/"
SM_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/api-AbCdEf"
VALUES = placeholder_values(
    branch="feature/login",
    slug="feature-login-1a2b3c4d",
    sha="a" * 40,
    preview_url="https://feature-login-1a2b3c4d.preview.example.com",
    repository="acme/shop",
)


def load(text: str, defaults: RepoDefaults = DEFAULTS) -> RepoConfig:
    return load_repo_config(textwrap.dedent(text), defaults=defaults)


def error_of(text: str, defaults: RepoDefaults = DEFAULTS) -> str:
    with pytest.raises(ConfigError) as exc:
        load(text, defaults)
    return str(exc.value)


def minimal_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_name": "demo",
        "region": "us-east-1",
        "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/demo-work.fifo",
        "table_name": "demo-environments",
        "cluster": "demo",
        "vpc_id": "vpc-1",
        "subnets": ("subnet-1",),
        "security_groups": ("sg-1",),
        "listeners": (),
        "hosted_zone_id": "Z1",
        "preview_domain": "preview.example.com",
        "ecr_repository": "demo",
        "execution_role_arn": "arn:aws:iam::123456789012:role/demo-task-execution",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- absent file, full file


def test_absent_file_gives_the_defaults() -> None:
    config = load_repo_config(None, defaults=DEFAULTS)
    assert config == RepoConfig()


def test_empty_file_gives_the_defaults() -> None:
    assert load("# nothing here yet\n") == RepoConfig()


def test_full_file_is_parsed() -> None:
    config = load(
        f"""
        branches:
          include: ["feature/**", "fix/*"]
          exclude: ["feature/wip-*"]
        service:
          container_port: 3000
          health_check_path: /healthz
          cpu: 512
          memory: 2048
          desired_count: 2
          spot: false
        env:
          API_URL: https://api.example.com
          WORKERS: 4
        secrets:
          DATABASE_URL: {SSM_ARN}
        ttl: 3d
        slack:
          channel: "#shop-previews"
        keep: [demo/*]
        """
    )
    assert config.branches == BranchFilter(("feature/**", "fix/*"), ("feature/wip-*",))
    assert config.service == ServiceConfig(3000, "/healthz", 512, 2048, 2, False)
    assert config.env == {"API_URL": "https://api.example.com", "WORKERS": "4"}
    assert config.secrets == {"DATABASE_URL": SSM_ARN}
    assert config.ttl_hours == 72.0
    assert config.slack_channel == "#shop-previews"
    assert config.keep == ("demo/*",)


def test_env_value_is_kept_exactly_as_written() -> None:
    config = load("env:\n  DEBUG: true\n  RATIO: 1.50\n")
    assert config.env == {"DEBUG": "true", "RATIO": "1.50"}


def test_ttl_as_a_number_is_hours() -> None:
    assert load("ttl: 12\n").ttl_hours == 12.0


# ---------------------------------------------------------------- errors: line and key


def test_error_names_file_line_and_key_path() -> None:
    message = error_of(
        """\
        service:
          container_port: 8080
          cpu: 300
        """
    )
    assert message == (
        "branchenv.yml line 3: service.cpu: must be one of 256, 512, 1024, 2048, 4096, got 300"
    )


def test_unknown_key_suggests_the_closest_one() -> None:
    message = error_of("service:\n  helth_check_path: /up\n")
    assert message.startswith("branchenv.yml line 2: service.helth_check_path: unknown key")
    assert "did you mean 'health_check_path'?" in message


def test_unknown_top_level_key_lists_the_known_ones_when_nothing_is_close() -> None:
    message = error_of("zzz: 1\n")
    assert "line 1: zzz: unknown key; known keys: branches, service, env" in message


def test_duplicate_key_is_an_error() -> None:
    assert "line 3: env.A: appears twice" in error_of("env:\n  A: x\n  A: y\n")


def test_invalid_yaml_names_the_line() -> None:
    message = error_of("env:\n  A: [unclosed\nservice: {}\n")
    assert message.startswith("branchenv.yml line ")
    assert "not valid YAML" in message


def test_top_level_must_be_a_mapping() -> None:
    assert "line 1: must be a mapping, got a list" in error_of("- a\n- b\n")


def test_wrong_type_names_what_was_found() -> None:
    message = error_of("service:\n  desired_count: two\n")
    assert message == (
        "branchenv.yml line 2: service.desired_count: must be a whole number, got 'two'"
    )


def test_yaml_tags_are_not_supported() -> None:
    assert "line 2: env.A: YAML tags such as !Ref are not supported" in error_of(
        "env:\n  A: !Ref x\n"
    )


def test_explicit_core_tag_that_does_not_fit_is_an_error() -> None:
    assert "line 1: ttl: cannot be read as tag:yaml.org,2002:int" in error_of("ttl: !!int x\n")


def test_port_out_of_range() -> None:
    assert "service.container_port: must be between 1 and 65535, got 70000" in error_of(
        "service:\n  container_port: 70000\n"
    )


def test_health_check_path_must_start_with_a_slash() -> None:
    assert "service.health_check_path: must be a URL path" in error_of(
        "service:\n  health_check_path: healthz\n"
    )


def test_memory_must_fit_the_cpu() -> None:
    message = error_of("service:\n  cpu: 1024\n  memory: 512\n")
    assert "line 3: service.memory: Fargate does not run cpu 1024 with memory 512" in message
    assert "between 2048 and 8192 in steps of 1024" in message


def test_cpu_alone_is_checked_against_the_default_memory() -> None:
    message = error_of("service:\n  cpu: 4096\n", RepoDefaults(default_memory=512))
    assert "line 2: service.cpu: Fargate does not run cpu 4096 with memory 512" in message


def test_bad_ttl() -> None:
    assert "line 1: ttl: must be a number of hours or a duration" in error_of("ttl: soon\n")


def test_slack_needs_a_channel() -> None:
    assert "slack.channel: is missing" in error_of("slack: {}\n")


def test_env_without_value_says_how_to_write_empty() -> None:
    assert 'env.A: must be a single value (write A: "" for empty)' in error_of("env:\n  A:\n")


def test_env_name_must_be_a_variable_name() -> None:
    assert "env.my-var: is not a valid variable name" in error_of("env:\n  my-var: x\n")


def test_env_cannot_redefine_branchenv_variables() -> None:
    assert "env.PREVIEW_URL: is set by branchenv itself" in error_of("env:\n  PREVIEW_URL: x\n")


def test_name_in_both_env_and_secrets_is_an_error() -> None:
    message = error_of(f"env:\n  DB: x\nsecrets:\n  DB: {SSM_ARN}\n")
    assert "secrets.DB: is also in env" in message


def test_file_too_large() -> None:
    with pytest.raises(ConfigError, match="larger than 64 KiB"):
        load_repo_config("env: {}\n" + "#" * 70_000, defaults=DEFAULTS)


# ---------------------------------------------------------------- secrets


def test_secrets_manager_arn_is_accepted() -> None:
    assert load(f"secrets:\n  API: {SM_ARN}\n").secrets == {"API": SM_ARN}


def test_secrets_manager_arn_with_json_key_is_accepted() -> None:
    arn = SM_ARN + ":password::"
    assert load(f"secrets:\n  API: '{arn}'\n").secrets == {"API": arn}


def test_secret_that_is_not_an_arn_is_rejected_without_showing_it() -> None:
    message = error_of("secrets:\n  API_TOKEN: ghp_s3cr3tvalue\n")
    assert message.startswith("branchenv.yml line 2: secrets.API_TOKEN: must be an SSM")
    assert "ghp_s3cr3tvalue" not in message


def test_secret_arn_of_another_service_is_rejected() -> None:
    message = error_of("secrets:\n  A: arn:aws:s3:::bucket/key\n")
    assert "secrets.A: must be an SSM parameter ARN" in message


# ---------------------------------------------------------------- placeholders


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_each_placeholder_is_rendered(placeholder: str) -> None:
    config = load(f"env:\n  VALUE: 'x-${{{placeholder}}}-y'\n")
    assert render_env(config, VALUES) == {"VALUE": f"x-{VALUES[placeholder]}-y"}


def test_unknown_placeholder_is_an_error_naming_it() -> None:
    message = error_of("env:\n  HOST: '${HOSTNAME}.example.com'\n")
    assert message.startswith("branchenv.yml line 2: env.HOST: unknown placeholder ${HOSTNAME}")


def test_expression_is_not_a_placeholder() -> None:
    message = error_of("env:\n  B: '${BRANCH:-main}'\n")
    assert "env.B: expressions in '${...}' are not supported" in message
    assert "main" not in message


def test_unclosed_placeholder_is_an_error() -> None:
    assert "without a closing '}'" in error_of("env:\n  B: 'x${BRANCH'\n")


def test_escaped_placeholder_is_literal() -> None:
    config = load("env:\n  B: '$${HOME} and ${BRANCH}'\n")
    assert render_env(config, VALUES) == {"B": "${HOME} and feature/login"}


def test_dollar_without_brace_is_literal() -> None:
    config = load("env:\n  PRICE: '$5 or $$'\n")
    assert render_env(config, VALUES) == {"PRICE": "$5 or $$"}


def test_placeholder_values_are_not_expanded_again() -> None:
    values = {**VALUES, "BRANCH": "evil-${SHA}"}
    assert render_template("${BRANCH}", values) == "evil-${SHA}"


def test_placeholder_error_never_shows_the_value() -> None:
    message = error_of("env:\n  DSN: 'postgres://user:hunter2@db/${NOPE}'\n")
    assert "hunter2" not in message


_literal = st.text(st.characters(blacklist_characters="${}"), max_size=8)
_piece = st.one_of(
    _literal.map(lambda t: (t, t)),
    st.sampled_from(PLACEHOLDERS).map(lambda p: ("${" + p + "}", VALUES[p])),
    st.just(("$${", "${")),
)


@given(st.lists(_piece, max_size=10))
def test_rendering_substitutes_every_piece_exactly_once(pieces: list[tuple[str, str]]) -> None:
    template = "".join(source for source, _ in pieces)
    expected = "".join(rendered for _, rendered in pieces)
    assert render_template(template, VALUES) == expected


@given(st.lists(_piece.filter(lambda p: p[0] != "$${"), max_size=10))
def test_rendering_without_escapes_never_leaves_a_placeholder(
    pieces: list[tuple[str, str]],
) -> None:
    template = "".join(source for source, _ in pieces)
    assert "${" not in render_template(template, VALUES)


def _yaml_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_plain_text = st.text(
    st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="$"), max_size=30
)


@given(_plain_text)
def test_env_value_without_dollar_renders_to_itself(value: str) -> None:
    config = load_repo_config(f"env:\n  A: {_yaml_quoted(value)}\n", defaults=DEFAULTS)
    assert render_env(config, VALUES) == {"A": value}


@given(st.text(st.sampled_from("${}AB_ HOSTBRANCHSLUG"), max_size=20))
def test_env_value_with_dollars_renders_or_is_a_config_error(value: str) -> None:
    text = f"env:\n  A: {_yaml_quoted(value)}\n"
    try:
        outcome = render_env(load_repo_config(text, defaults=DEFAULTS), VALUES)["A"]
    except ConfigError as exc:
        outcome = str(exc)
        assert outcome.startswith("branchenv.yml line 2: env.A: ")
    assert isinstance(outcome, str)


_yaml_fragment = st.sampled_from(
    [
        "env:",
        "service:",
        "ttl:",
        "keep:",
        "secrets:",
        "branches:",
        "cpu:",
        "A:",
        "include:",
        " ",
        "  ",
        "\n",
        "- ",
        "!!int ",
        "!x ",
        "&a ",
        "*a",
        "[",
        "]",
        "{",
        "}",
        ",",
        "'",
        '"',
        "1",
        "x",
        "${SHA}",
        "${",
        "3d",
        "~",
        "true",
        "<<:",
        "---",
        "#",
        ":",
    ]
)


@given(st.lists(_yaml_fragment, max_size=25).map("".join))
def test_any_text_loads_or_fails_with_a_config_error(text: str) -> None:
    try:
        outcome = repr(load_repo_config(text, defaults=DEFAULTS))
    except ConfigError as exc:
        outcome = str(exc)
    assert outcome.startswith(("RepoConfig(", "branchenv.yml"))


# ---------------------------------------------------------------- branch filters


def test_default_filter_takes_feature_branches() -> None:
    assert BranchFilter().wants("feature/login", default_branch="main")


def test_default_filter_skips_the_default_branch() -> None:
    assert not BranchFilter().wants("main", default_branch="main")


def test_default_filter_skips_dependabot() -> None:
    assert not BranchFilter().wants("dependabot/npm_and_yarn/lodash-4.17.21", default_branch="main")


def test_include_limits_the_branches() -> None:
    branches = load("branches:\n  include: ['feature/**']\n").branches
    assert branches.wants("feature/a/b", default_branch="main")
    assert not branches.wants("fix/a", default_branch="main")


def test_exclude_wins_over_include() -> None:
    branches = load("branches:\n  include: ['**']\n  exclude: ['wip/*']\n").branches
    assert not branches.wants("wip/x", default_branch="main")
    assert branches.wants("wip/x/y", default_branch="main")


def test_setting_exclude_replaces_the_dependabot_default() -> None:
    branches = load("branches:\n  exclude: []\n").branches
    assert branches.wants("dependabot/pip/x", default_branch="main")


def test_default_branch_gets_no_preview_even_when_include_names_it() -> None:
    # The intake drops the default branch's webhooks before any branchenv.yml is read, so
    # the rule says what happens: an include entry cannot admit it (tests/unit/
    # test_branch_rule.py holds the intake, the filter and plan to the same answer).
    branches = load("branches:\n  include: [main, 'feature/**']\n").branches
    assert not branches.wants("main", default_branch="main")


def test_single_star_stays_within_a_segment() -> None:
    assert glob_match("feature/*", "feature/a")
    assert not glob_match("feature/*", "feature/a/b")


def test_double_star_prefix_matches_at_any_depth() -> None:
    assert glob_match("**/hotfix", "hotfix")
    assert glob_match("**/hotfix", "team/x/hotfix")


_segment = st.text(st.sampled_from("abc-_.+()[]^$|\\"), min_size=1, max_size=5)


@given(st.lists(_segment, min_size=1, max_size=4).map("/".join))
def test_branch_without_glob_characters_matches_itself_and_double_star(branch: str) -> None:
    assert glob_match(branch, branch)
    assert glob_match("**", branch)
    assert not glob_match(branch, branch + "x")


def test_glob_characters_are_not_regex() -> None:
    assert not glob_match("release.1", "release-1")


def test_keep_marks_branches_the_reaper_must_not_remove() -> None:
    config = load("keep: ['demo/**', staging]\n")
    assert config.is_kept("demo/q3/launch")
    assert config.is_kept("staging")
    assert not config.is_kept("feature/x")


# ---------------------------------------------------------------- common block, operator


def test_common_block_is_merged_under_the_file() -> None:
    defaults = RepoDefaults(
        common=CommonConfig(env={"LOG_LEVEL": "info", "REGION": "eu"}, secrets={"DB": SM_ARN})
    )
    config = load("env:\n  LOG_LEVEL: debug\n", defaults)
    assert config.env == {"REGION": "eu", "LOG_LEVEL": "debug"}
    assert config.secrets == {"DB": SM_ARN}


def test_repository_wins_over_common_across_env_and_secrets() -> None:
    defaults = RepoDefaults(common=CommonConfig(secrets={"DB": SM_ARN}))
    config = load("env:\n  DB: sqlite:///tmp/db\n", defaults)
    assert config.env == {"DB": "sqlite:///tmp/db"}
    assert config.secrets == {}


def test_common_block_applies_to_a_repository_without_the_file() -> None:
    defaults = RepoDefaults(common=CommonConfig(env={"LOG_LEVEL": "info"}))
    assert load_repo_config(None, defaults=defaults).env == {"LOG_LEVEL": "info"}


def test_operator_policy_from_settings_carries_the_open_port_range() -> None:
    assert OperatorPolicy().container_ports == (80, 65535)
    settings = minimal_settings(container_ports=(3000, 3999), container_port=3000)
    assert OperatorPolicy.from_settings(settings).container_ports == (3000, 3999)


def test_repo_defaults_from_settings_parse_the_common_json() -> None:
    settings = minimal_settings(
        common_config='{"env": {"LOG_LEVEL": "info"}, "secrets": {"DB": "' + SSM_ARN + '"}}',
        max_cpu=1024,
        cpu=512,
        memory=1024,
    )
    defaults = repo_defaults(settings)
    assert defaults.common == CommonConfig({"LOG_LEVEL": "info"}, {"DB": SSM_ARN})
    assert (defaults.default_cpu, defaults.default_memory) == (512, 1024)
    assert OperatorPolicy.from_settings(settings).max_cpu == 1024


def test_bad_common_block_is_a_settings_error_naming_the_variable() -> None:
    settings = minimal_settings(common_config="secrets:\n  DB: plain-password\n")
    with pytest.raises(SettingsError) as exc:
        repo_defaults(settings)
    assert str(exc.value).startswith("BRANCHENV_COMMON_CONFIG line 2: secrets.DB: must be an SSM")
    assert "plain-password" not in str(exc.value)


def test_operator_check_is_resolved_by_dotted_name() -> None:
    settings = minimal_settings(policy_checks=("chalicelib.engine.policy:privileged",))
    from chalicelib.engine.policy import privileged

    assert OperatorPolicy.from_settings(settings).checks == (privileged,)


def test_operator_check_that_does_not_exist_is_a_settings_error() -> None:
    settings = minimal_settings(policy_checks=("chalicelib.engine.policy:no_such_check",))
    with pytest.raises(SettingsError, match="has no function 'no_such_check'"):
        OperatorPolicy.from_settings(settings)


def test_operator_check_module_that_does_not_import_is_a_settings_error() -> None:
    settings = minimal_settings(policy_checks=("no_such_module_xyz:check",))
    with pytest.raises(SettingsError, match="cannot import 'no_such_module_xyz'"):
        OperatorPolicy.from_settings(settings)


# ---------------------------------------------------------------- settings variables


BASE_ENVIRON = {
    "AWS_REGION": "us-east-1",
    "BRANCHENV_APP_NAME": "demo",
    "BRANCHENV_QUEUE_URL": "https://sqs/q.fifo",
    "BRANCHENV_TABLE": "t",
    "BRANCHENV_CLUSTER": "c",
    "BRANCHENV_VPC_ID": "vpc-1",
    "BRANCHENV_SUBNETS": "subnet-1",
    "BRANCHENV_SECURITY_GROUPS": "sg-1",
    "BRANCHENV_LISTENERS": '[{"listener_arn": "arn:l", "dns_name": "d", "zone_id": "z"}]',
    "BRANCHENV_HOSTED_ZONE_ID": "Z1",
    "BRANCHENV_PREVIEW_DOMAIN": "preview.example.com",
    "BRANCHENV_ECR_REPOSITORY": "demo",
    "BRANCHENV_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
    "BRANCHENV_CODEBUILD_PROJECT": "demo-build",
}


def test_settings_read_the_operator_variables() -> None:
    settings = Settings.from_environ(
        {
            **BASE_ENVIRON,
            "BRANCHENV_MAX_CPU": "1024",
            "BRANCHENV_MAX_MEMORY": "4096",
            "BRANCHENV_ALLOWED_SECRET_PREFIXES": PREFIX,
            "BRANCHENV_POLICY_CHECKS": "acme.checks:no_root, acme.checks:labels",
            "BRANCHENV_COMMON_CONFIG": "env:\n  LOG_LEVEL: info\n",
        }
    )
    assert (settings.max_cpu, settings.max_memory) == (1024, 4096)
    assert settings.allowed_secret_prefixes == (
        "arn:aws:ssm:us-east-1:123456789012:parameter/demo/",
    )
    assert settings.policy_checks == ("acme.checks:no_root", "acme.checks:labels")
    assert settings.common_config == "env:\n  LOG_LEVEL: info"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAX_CPU", "lots", "BRANCHENV_MAX_CPU must be a whole number"),
        ("MAX_MEMORY", "100", "BRANCHENV_MAX_MEMORY must be between 512 and 122880"),
        ("ALLOWED_SECRET_PREFIXES", "arn:aws:s3:::b", "BRANCHENV_ALLOWED_SECRET_PREFIXES must"),
        ("POLICY_CHECKS", "acme.checks.no_root", "BRANCHENV_POLICY_CHECKS must list functions"),
        ("COMMON_CONFIG", "env: [unclosed", "BRANCHENV_COMMON_CONFIG must be YAML or JSON"),
        ("COMMON_CONFIG", "service: {}", "BRANCHENV_COMMON_CONFIG must be a mapping with only"),
    ],
)
def test_malformed_operator_variable_is_a_settings_error(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_environ({**BASE_ENVIRON, f"BRANCHENV_{variable}": value})


# ---------------------------------------------------------------- effective service


def test_service_spec_fills_missing_values_from_settings() -> None:
    settings = minimal_settings(container_port=9000, cpu=512, memory=1024, spot=True)
    spec = load("service:\n  spot: false\n  desired_count: 2\n").service_spec(settings)
    assert (spec.container_port, spec.cpu, spec.memory) == (9000, 512, 1024)
    assert (spec.spot, spec.desired_count, spec.health_check_path) == (False, 2, "/")
