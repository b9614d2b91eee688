package sftp

// The checksum commands: an "exec" request of a session channel may run
// md5sum, sha1sum or sha256sum on files of the user's tree, which is how
// rclone's sftp backend reads hashes (rclone check, --checksum) without
// downloading. There is no shell: the command line is split into words the
// way a POSIX shell splits a simple command, quotes and backslashes
// honoured, and anything a shell would expand, redirect or run (globs, $,
// backquotes, ;, |, &, <, >, …) unquoted is refused, as is every other
// command. Each file needs what a download needs.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// FileHasher is a Session that serves the checksum commands: vfs.Session.
type FileHasher interface {
	HashFile(ctx context.Context, p string, sum hash.Hash) error
}

// hashCommands are the commands served, by name, with their algorithm.
var hashCommands = map[string]string{
	"md5sum":    "md5",
	"sha1sum":   "sha1",
	"sha256sum": "sha256",
}

// Exit statuses of the checksum commands: coreutils' 1 for a file that
// could not be read or a bad option, the shell's 127 for a command that
// does not exist here.
const (
	exitFailure  = 1
	exitNotFound = 127
)

// refusal is what the client is told about a command line it may not run.
const refusal = "only md5sum, sha1sum and sha256sum of files are served here, without a shell"

// execCommand decodes an "exec" request's payload (RFC 4254 §6.5).
func execCommand(payload []byte) (string, bool) {
	var msg struct{ Command string }
	if err := ssh.Unmarshal(payload, &msg); err != nil {
		return "", false
	}
	return msg.Command, true
}

// serveExec runs an exec request's command line, then ends the channel
// with its exit status and closes served. When the session's Gate ended
// the session, end closes the connection, as after SFTP.
func serveExec(ctx context.Context, ch ssh.Channel, sess Session, line string, log *slog.Logger, end func(), served chan struct{}) {
	defer close(served)
	status, err := runExec(ctx, ch, sess, line)
	if status == exitNotFound {
		log.Info("sftp exec refused", "command", line)
	} else {
		log.Debug("sftp exec", "command", line, "status", status)
	}
	_ = ch.CloseWrite()
	exitChannel{ch}.CloseStatus(status)
	if err != nil {
		end()
	}
}

// runExec runs one command line on a channel: the output to stdout, errors
// to stderr, and the exit status. It returns an error wrapping
// vfs.ErrDenied if the session's Gate ended the session meanwhile.
func runExec(ctx context.Context, ch ssh.Channel, sess Session, line string) (uint32, error) {
	words, err := splitCommand(line)
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "skiff: %v: %s\n", err, refusal)
		return exitNotFound, nil
	}
	alg, ok := "", len(words) > 0
	if ok {
		alg, ok = hashCommands[words[0]]
	}
	hasher, isHasher := sess.(FileHasher)
	newHash, known := vfs.HashAlgorithm(alg)
	if !ok || !isHasher || !known {
		name := "(empty)"
		if len(words) > 0 {
			name = words[0]
		}
		fmt.Fprintf(ch.Stderr(), "skiff: %s: command not found: %s\n", clip(name), refusal)
		return exitNotFound, nil
	}
	cmd := words[0]
	files, err := hashArgs(words[1:])
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "%s: %v\n", cmd, err)
		return exitFailure, nil
	}
	status := uint32(0)
	for _, name := range files {
		sum := newHash()
		if name == "-" {
			err = hashStdin(ctx, ch, sum)
		} else {
			err = hasher.HashFile(ctx, name, sum)
		}
		if errors.Is(err, vfs.ErrDenied) {
			fmt.Fprintf(ch.Stderr(), "%s: %s\n", cmd, err)
			return exitFailure, err
		}
		if err != nil {
			fmt.Fprintf(ch.Stderr(), "%s: %s: %v\n", cmd, clip(name), err)
			status = exitFailure
			continue
		}
		if _, err := io.WriteString(ch, sumLine(sum.Sum(nil), name)); err != nil {
			return exitFailure, nil // the client is gone
		}
	}
	return status, nil
}

// hashStdin hashes what the client sends until its EOF.
func hashStdin(ctx context.Context, r io.Reader, sum hash.Hash) error {
	buf := make([]byte, 32<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		sum.Write(buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// hashArgs are the files of a checksum command's arguments: "-" for
// standard input when there are none. Options are refused (they would
// change the output), but for "--", which ends them.
func hashArgs(args []string) ([]string, error) {
	var files []string
	for i, a := range args {
		if a == "--" {
			files = append(files, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			return nil, fmt.Errorf("option %s not supported (only file names; %s)", clip(a), refusal)
		}
		files = append(files, a)
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	return files, nil
}

// sumLine is a line of coreutils' output: the hex sum, two spaces and the
// name. A name holding a backslash, newline or carriage return has them
// escaped and the line starts with a backslash, as coreutils does.
func sumLine(sum []byte, name string) string {
	prefix := ""
	if strings.ContainsAny(name, "\\\n\r") {
		prefix = "\\"
		name = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
	}
	return prefix + hex.EncodeToString(sum) + "  " + name + "\n"
}

// clip shortens what the client sent before it is echoed back.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// unquotedOK are the characters that stand for themselves outside quotes,
// in every POSIX shell; any other character must be quoted or escaped.
func unquotedOK(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("_.,:/@+-=%", c) >= 0
}

// splitCommand splits a command line into words as a POSIX shell splits a
// simple command, expanding nothing: blanks separate words; a backslash
// outside quotes takes the next character literally (and a backslash-newline
// is removed); '…' is literal; in "…" a backslash escapes only $ ` " \ and
// newline. Anything a shell would give a meaning (unquoted ; | & < > ( ) $ `
// * ? [ ] { } ~ # ! and the like, or $ and ` inside double quotes) is
// refused rather than taken literally, so no command line means something
// else here than in a shell.
func splitCommand(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("backslash at the end of the command")
			}
			i++
			if line[i] != '\n' {
				w.WriteByte(line[i])
				inWord = true
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			w.WriteString(line[i+1 : i+1+end])
			i += 1 + end
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				switch line[j] {
				case '$', '`':
					return nil, fmt.Errorf("%q inside double quotes", line[j])
				case '\\':
					if j+1 < len(line) && strings.IndexByte("$`\"\\\n", line[j+1]) >= 0 {
						j++
						if line[j] == '\n' {
							continue
						}
					}
				}
				w.WriteByte(line[j])
			}
			if j >= len(line) {
				return nil, errors.New("unterminated quote")
			}
			i = j
			inWord = true
		case unquotedOK(c):
			w.WriteByte(c)
			inWord = true
		default:
			return nil, fmt.Errorf("%q is not allowed unquoted", c)
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
