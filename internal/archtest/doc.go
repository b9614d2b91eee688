// Package archtest holds the test that keeps Skiff's imports pointing one way
// (docs/ARCHITECTURE.md); it has no code of its own.
package archtest
