// Package pipeline declares Wyvern's OpenFlow pipeline once: the stages in
// run order (their table numbers follow from the order), the register
// fields, the cookie layout, the punt meters and the table-miss flows.
// Flows themselves are package of's generic values.
//
// It imports package of and the standard library only: no I/O, no clock,
// no logger.
package pipeline
