// Package conformance holds the Neutron API conformance run behind `make
// conformance`: tempest's network API tests (tempest.api.network, Debian's
// python3-tempest) against a real wyvernd with --auth keystone and a real
// Keystone (internal/keystonetest). Its one test runs only when
// WYVERN_CONFORMANCE=1; see tempest_test.go.
package conformance
