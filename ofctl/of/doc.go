// Package of is the OpenFlow flow model, with nothing of Wyvern's in it:
// the Flow value (match, actions, cookie, timeouts), flow sets and their
// diff, its two renderings — the text `ovs-ofctl dump-flows` prints and
// the OpenFlow 1.5 wire format, both ways — and the parsing of the frames
// punts carry. Wyvern's own pipeline (stages, registers, cookie layout,
// punt reasons) is declared on top of it, in package pipeline; the
// OpenFlow sessions that carry it are package ofctl.
//
// It imports the standard library only: no I/O, no clock, no logger.
package of
