// Package pipeline declares Wyvern's OpenFlow pipeline once: the stages in
// run order with their table numbers and miss actions, the register fields,
// the cookie layout, and the Flow value with its two renderings — the text
// ovs-ofctl prints and the OpenFlow 1.5 wire format.
//
// It is pure: standard library only, no I/O, no clock, no logger.
package pipeline
