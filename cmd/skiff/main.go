// Command skiff is the Skiff SFTP service: the GraphQL API for admin clients
// and support staff, the SFTP server for end users, and the tools to run them.
//
// Every flag can also be set with the SKIFF_* environment variable named in
// `skiff --help`.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
)

// CLI is the command line. Each subcommand's Run does its work; main only parses.
type CLI struct {
	Log LogFlags `embed:"" prefix:"log-"`

	Serve   ServeCmd   `cmd:"" help:"Run the GraphQL API and the SFTP server (starts a private PostgreSQL unless --database-url is set)."`
	Migrate MigrateCmd `cmd:"" help:"Apply database migrations (as the tables' owner) and exit; also status and down."`
	Admin   AdminCmd   `cmd:"" help:"Bootstrap what the API cannot create for itself: staff logins and accounts."`
	Version VersionCmd `cmd:"" help:"Print the version and the newest schema migration this binary knows."`
}

// LogFlags configure structured logging.
type LogFlags struct {
	Level  string `default:"info" enum:"debug,info,warn,error" env:"SKIFF_LOG_LEVEL" help:"Log level (${enum})."`
	Format string `default:"text" enum:"text,json" env:"SKIFF_LOG_FORMAT" help:"Log format (${enum})."`
}

func (f LogFlags) logger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(f.Level))
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationsInSeconds}
	if f.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// durationsInSeconds logs every duration as seconds (a float, to the
// millisecond): JSON would otherwise carry integer nanoseconds, and text
// "1m30.5s", neither easy to compare or sum.
func durationsInSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Round(time.Millisecond).Seconds())
	}
	return a
}

func main() {
	var cli CLI
	kctx := kong.Parse(&cli,
		kong.Name("skiff"),
		kong.Description("Skiff: the SFTP module of a multi-tenant file-sharing service."),
		kong.UsageOnError(),
	)
	log := cli.Log.logger()
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ignoreHangups(ctx, log)
	cli.Serve.jsonLog = cli.Log.Format == "json"
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(log); err != nil {
		stop()
		os.Exit(fatal(log, err)) // one line, in the log format; exit codes in exit.go
	}
}
