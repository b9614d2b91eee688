package tenant

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters from the OWASP Password Storage Cheat Sheet
// (m=19 MiB, t=2, p=1). Each verification costs about 19 MiB for a few tens
// of milliseconds, so verifications are also bounded in number (hashSlots).
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// MinPasswordLength and MaxPasswordLength bound what users may choose. The
// upper bound keeps hashing cost predictable.
const (
	MinPasswordLength = 10
	MaxPasswordLength = 256
)

// argonCost is the memory (KiB) and passes of new hashes and of the dummy
// hash: argonMemoryKiB and argonTime, but in the test binaries that call
// UseCheapPasswordHashes. A verification takes them from the hash.
var argonCost = struct{ memoryKiB, time uint32 }{argonMemoryKiB, argonTime}

// UseCheapPasswordHashes makes new password hashes cost 64 KiB and one
// pass, for test binaries, from TestMain before m.Run. Under the race
// detector one hash at the real cost takes about 0.3 s of CPU, and the
// suites of the API and the SFTP server make thousands (every user they
// create and every login). What the tests check (who may log in, what a
// refusal says, how attempts are counted) does not depend on the cost;
// tenant's own tests keep the real one. A server never calls it.
func UseCheapPasswordHashes() {
	argonCost.memoryKiB, argonCost.time = 64, 1
	dummyHash = mustHash("skiff-dummy-password-never-matches")
}

// hashSlots bounds concurrent argon2id computations so that a burst of password
// attempts queues instead of exhausting memory (each takes argonMemoryKiB).
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// dummyHash is verified against when the login is unknown, so an unknown
// login costs the same as a wrong password.
var dummyHash = mustHash("skiff-dummy-password-never-matches")

// HashPassword returns an argon2id PHC string for password.
func HashPassword(ctx context.Context, password string) (string, error) {
	if err := ValidatePassword(password); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	if err := acquireHashSlot(ctx); err != nil {
		return "", err
	}
	defer releaseHashSlot()
	return encodeHash(salt, argonKey(password, salt)), nil
}

// ValidatePassword checks a password a user chose.
func ValidatePassword(password string) error {
	n := len([]rune(password))
	if n < MinPasswordLength {
		return Invalid("password", "password must be at least %d characters", MinPasswordLength)
	}
	if len(password) > MaxPasswordLength {
		return Invalid("password", "password must be at most %d bytes", MaxPasswordLength)
	}
	return nil
}

// VerifyPassword reports whether password matches the PHC-encoded hash.
// An empty hash (no password set, unknown login) is verified against a dummy
// hash so the time taken does not reveal which case applied.
func VerifyPassword(ctx context.Context, encoded, password string) (bool, error) {
	real := encoded != ""
	if !real {
		encoded = dummyHash
	}
	if len(password) > MaxPasswordLength {
		password = password[:MaxPasswordLength]
	}
	p, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	if err := acquireHashSlot(ctx); err != nil {
		return false, err
	}
	defer releaseHashSlot()
	got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	ok := subtle.ConstantTimeCompare(got, p.key) == 1
	return ok && real, nil
}

func acquireHashSlot(ctx context.Context) error {
	select {
	case hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func releaseHashSlot() { <-hashSlots }

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

var b64 = base64.RawStdEncoding

// argonKey is password's key at the cost of new hashes.
func argonKey(password string, salt []byte) []byte {
	return argon2.IDKey([]byte(password), salt, argonCost.time, argonCost.memoryKiB, argonThreads, argonKeyLen)
}

func encodeHash(salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonCost.memoryKiB, argonCost.time, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadHash = errors.New("stored password hash is malformed")

func decodeHash(s string) (*argonParams, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return nil, errBadHash
	}
	p := &argonParams{}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return nil, errBadHash
	}
	// Refuse parameters that would let a tampered row exhaust memory or CPU.
	if p.memory == 0 || p.memory > 256*1024 || p.time == 0 || p.time > 16 || p.threads == 0 {
		return nil, errBadHash
	}
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil {
		return nil, errBadHash
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return nil, errBadHash
	}
	return p, nil
}

func mustHash(password string) string {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	return encodeHash(salt, argonKey(password, salt))
}
