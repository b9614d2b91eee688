// Package archtest holds the tests that keep Skiff's imports pointing one way
// (docs/ARCHITECTURE.md) and its files independent of the architecture
// (.ci/run's cross-builds); it has no code of its own.
package archtest
