package main

import (
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/skiffhq/skiff/graph"
)

// serveFlags are serve's flags as users' configurations name them: the flag,
// its environment variable and its default. Renaming one breaks someone's
// deployment, so moving flags between structs must leave these alone. The
// group is the subsystem the flag configures, its heading in --help.
var serveFlags = []struct{ name, env, def, group string }{
	{"database-url", "SKIFF_DATABASE_URL", "", "Database"},
	{"migrate-database-url", "SKIFF_MIGRATE_DATABASE_URL", "", "Database"},
	{"data-dir", "SKIFF_DATA_DIR", "skiff-data", "Database"},
	{"database-max-connections", "SKIFF_DATABASE_MAX_CONNECTIONS", "32", "Database"},
	{"database-max-idle-connections", "SKIFF_DATABASE_MAX_IDLE_CONNECTIONS", "32", "Database"},
	{"database-connection-max-idle-time", "SKIFF_DATABASE_CONNECTION_MAX_IDLE_TIME", "5m", "Database"},
	{"database-connection-max-lifetime", "SKIFF_DATABASE_CONNECTION_MAX_LIFETIME", "1h", "Database"},
	{"allow-unsafe-database-role", "SKIFF_ALLOW_UNSAFE_DATABASE_ROLE", "", "Database"},
	{"migrate", "SKIFF_MIGRATE", "", "Database"},
	{"http-addr", "SKIFF_HTTP_ADDR", "127.0.0.1:8080", "GraphQL API"},
	{"playground", "SKIFF_PLAYGROUND", "auto", "GraphQL API"},
	{"introspection", "SKIFF_INTROSPECTION", "auto", "GraphQL API"},
	{"cors-origins", "SKIFF_CORS_ORIGINS", "", "GraphQL API"},
	{"cors-headers", "SKIFF_CORS_HEADERS", "Authorization,Content-Type,Accept,apollographql-client-name,apollographql-client-version,X-Request-ID", "GraphQL API"},
	{"max-body-bytes", "SKIFF_MAX_BODY_BYTES", "1048576", "GraphQL API"},
	{"max-complexity", "SKIFF_MAX_COMPLEXITY", "10000", "GraphQL API"}, // was 1000 before paged fields counted per item
	{"max-depth", "SKIFF_MAX_DEPTH", "12", "GraphQL API"},
	{"max-tokens", "SKIFF_MAX_TOKENS", "10000", "GraphQL API"},
	{"max-selections", "SKIFF_MAX_SELECTIONS", "100", "GraphQL API"},
	{"max-fields", "SKIFF_MAX_FIELDS", "2000", "GraphQL API"},
	{"max-response-bytes", "SKIFF_MAX_RESPONSE_BYTES", "8388608", "GraphQL API"},
	{"http-read-header-timeout", "SKIFF_HTTP_READ_HEADER_TIMEOUT", "10s", "GraphQL API"},
	{"http-read-timeout", "SKIFF_HTTP_READ_TIMEOUT", "30s", "GraphQL API"},
	{"http-write-timeout", "SKIFF_HTTP_WRITE_TIMEOUT", "60s", "GraphQL API"},
	{"http-idle-timeout", "SKIFF_HTTP_IDLE_TIMEOUT", "2m", "GraphQL API"},
	{"http-max-connections", "SKIFF_HTTP_MAX_CONNECTIONS", "1000", "GraphQL API"},
	{"http-max-connections-per-address", "SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "100", "GraphQL API"},
	{"http-max-requests-per-address", "SKIFF_HTTP_MAX_REQUESTS_PER_ADDRESS", "16", "GraphQL API"},
	{"http-trusted-proxies", "SKIFF_HTTP_TRUSTED_PROXIES", "", "GraphQL API"},
	{"max-subscriptions-per-token", "SKIFF_MAX_SUBSCRIPTIONS_PER_TOKEN", "16", "GraphQL API"},
	{"token-ttl", "SKIFF_TOKEN_TTL", "720h", "GraphQL API"},
	{"access-token-ttl", "SKIFF_ACCESS_TOKEN_TTL", "15m", "GraphQL API"},
	{"demo", "SKIFF_DEMO", "true", ""},
	{"shutdown-grace", "SKIFF_SHUTDOWN_GRACE", "20s", ""},
	{"sftp-addr", "SKIFF_SFTP_ADDR", "127.0.0.1:2022", "SFTP"},
	{"sftp-host", "SKIFF_SFTP_HOST", "", "SFTP"},
	{"sftp-port", "SKIFF_SFTP_PORT", "", "SFTP"},
	{"proxy-trusted", "SKIFF_PROXY_TRUSTED", "", "SFTP"},
	{"proxy-required", "SKIFF_PROXY_REQUIRED", "", "SFTP"},
	{"sftp-ciphers", "SKIFF_SFTP_CIPHERS", "", "SFTP"},
	{"sftp-strict-macs", "SKIFF_SFTP_STRICT_MACS", "", "SFTP"},
	{"sftp-idle-timeout", "SKIFF_SFTP_IDLE_TIMEOUT", "15m", "SFTP"},
	{"sftp-max-connections", "SKIFF_SFTP_MAX_CONNECTIONS", "10000", "SFTP"},
	{"sftp-max-connections-per-address", "SKIFF_SFTP_MAX_CONNECTIONS_PER_ADDRESS", "50", "SFTP"},
	{"sftp-handshake-timeout", "SKIFF_SFTP_HANDSHAKE_TIMEOUT", "30s", "SFTP"},
	{"sftp-max-auth-tries", "SKIFF_SFTP_MAX_AUTH_TRIES", "6", "SFTP"},
	{"sftp-max-sessions-per-connection", "SKIFF_SFTP_MAX_SESSIONS_PER_CONNECTION", "10", "SFTP"},
	{"sftp-max-connections-per-user", "SKIFF_SFTP_MAX_CONNECTIONS_PER_USER", "64", "SFTP"},
	{"sftp-max-connections-per-account", "SKIFF_SFTP_MAX_CONNECTIONS_PER_ACCOUNT", "1000", "SFTP"},
	{"sftp-max-channels-per-user", "SKIFF_SFTP_MAX_CHANNELS_PER_USER", "100", "SFTP"},
	{"sftp-max-channels-per-account", "SKIFF_SFTP_MAX_CHANNELS_PER_ACCOUNT", "1000", "SFTP"},
	{"sftp-max-channels", "SKIFF_SFTP_MAX_CHANNELS", "20000", "SFTP"},
	{"sftp-max-handles-per-connection", "SKIFF_SFTP_MAX_HANDLES_PER_CONNECTION", "1024", "SFTP"},
	{"sftp-max-handles-per-user", "SKIFF_SFTP_MAX_HANDLES_PER_USER", "2048", "SFTP"},
	{"sftp-max-handles-per-account", "SKIFF_SFTP_MAX_HANDLES_PER_ACCOUNT", "8192", "SFTP"},
	{"sftp-max-handles", "SKIFF_SFTP_MAX_HANDLES", "0", "SFTP"},
	{"fd-reserve", "SKIFF_FD_RESERVE", "0", "SFTP"},
	{"sftp-reply-memory", "SKIFF_SFTP_REPLY_MEMORY", "268435456", "SFTP"},
	{"sftp-reply-memory-per-connection", "SKIFF_SFTP_REPLY_MEMORY_PER_CONNECTION", "8388608", "SFTP"},
	{"sftp-db-timeout", "SKIFF_SFTP_DB_TIMEOUT", "5s", "SFTP"},
	{"sftp-db-grace", "SKIFF_SFTP_DB_GRACE", "60s", "SFTP"},
	{"sftp-shares-ttl", "SKIFF_SFTP_SHARES_TTL", "1s", "SFTP"},
	{"storage-dir", "SKIFF_STORAGE_DIR", "", "Storage"},
	{"storage-url", "SKIFF_STORAGE_URL", "", "Storage"},
	{"purge-grace", "SKIFF_PURGE_GRACE", "720h", "Storage"},
	{"storage-reconcile-every", "SKIFF_STORAGE_RECONCILE_EVERY", "6h", "Storage"},
	{"trial-licences", "SKIFF_TRIAL_LICENCES", "5", "SFTP"},
	{"sftp-sessions-refresh", "SKIFF_SFTP_SESSIONS_REFRESH", "2s", "SFTP"},
	{"sftp-sessions-ttl", "SKIFF_SFTP_SESSIONS_TTL", "10s", "SFTP"},
	{"dedicated-ip-pool", "SKIFF_DEDICATED_IP_POOL", "", "Dedicated IPs"},
	{"dedicated-ip-cooldown", "SKIFF_DEDICATED_IP_COOLDOWN", "720h", "Dedicated IPs"},
	{"cpu-profile", "SKIFF_CPU_PROFILE", "", ""},
	{"cgroup-root", "SKIFF_CGROUP_ROOT", "", ""},
	{"host-key-encryption-key", "SKIFF_HOST_KEY_ENCRYPTION_KEY", "", "SFTP"},
	{"host-key-encryption-key-file", "SKIFF_HOST_KEY_ENCRYPTION_KEY_FILE", "", "SFTP"},
	{"smtp-url", "SKIFF_SMTP_URL", "", "Mail"},
	{"email-retention", "SKIFF_EMAIL_RETENTION", "2160h", "Mail"},
	{"public-url", "SKIFF_PUBLIC_URL", "http://localhost:3000", "Mail"},
	{"metrics-addr", "SKIFF_METRICS_ADDR", "", "Metrics"},
	{"activity-retention", "SKIFF_ACTIVITY_RETENTION", "2160h", "Activity log"},
	{"upload-digest-interval", "SKIFF_UPLOAD_DIGEST_INTERVAL", "15m", "Activity log"},
	{"node-name", "SKIFF_NODE_NAME", "", "Activity log"},
}

// serveModel is serve's command in the parsed command line model.
func serveModel(t *testing.T) *kong.Node {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("skiff"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Model.Children {
		if c.Name == "serve" {
			return c
		}
	}
	t.Fatal("no serve command")
	return nil
}

// Every flag serve had keeps its name, its one environment variable and its
// default, and shows in --help under its subsystem.
func TestServeFlagNamesStay(t *testing.T) {
	flags := map[string]*kong.Flag{}
	for _, f := range serveModel(t).Flags {
		flags[f.Name] = f
	}
	if len(flags) != len(serveFlags) {
		t.Errorf("serve has %d flags, the list %d: add new flags to it", len(flags), len(serveFlags))
	}
	for _, want := range serveFlags {
		f := flags[want.name]
		if f == nil {
			t.Errorf("--%s is gone", want.name)
			continue
		}
		if len(f.Envs) != 1 || f.Envs[0] != want.env {
			t.Errorf("--%s: environment %v, want %s", want.name, f.Envs, want.env)
		}
		if f.Default != want.def {
			t.Errorf("--%s: default %q, want %q", want.name, f.Default, want.def)
		}
		if group := groupOf(f); group != want.group {
			t.Errorf("--%s: in group %q, want %q", want.name, group, want.group)
		}
	}
}

func groupOf(f *kong.Flag) string {
	if f.Group == nil {
		return ""
	}
	return f.Group.Title
}

// --cors-headers defaults to the handler's own default list.
func TestCORSHeadersDefault(t *testing.T) {
	for _, f := range serveModel(t).Flags {
		if f.Name == "cors-headers" && f.Default != strings.Join(graph.DefaultCORSHeaders, ",") {
			t.Fatalf("--cors-headers default %q, graph.DefaultCORSHeaders %v", f.Default, graph.DefaultCORSHeaders)
		}
	}
}

// --database-max-connections's help says what comes on top of the pool:
// the node's one LISTEN connection (TestOneNotificationConnection counts
// it), which is what PostgreSQL's max_connections is sized with.
func TestDatabaseMaxConnectionsHelp(t *testing.T) {
	for _, f := range serveModel(t).Flags {
		if f.Name == "database-max-connections" && !strings.Contains(f.Help, "plus one notification connection") {
			t.Errorf("--database-max-connections help: %q", f.Help)
		}
	}
}
