// Package ofctl is Wyvern's OpenFlow 1.5 edge: the listener, the
// handshake (HELLO, FEATURES, SET_CONFIG, NXT_PACKET_IN2 so punts carry
// their reasons), one session per datapath with keepalive and a fair punt
// queue, bundles that commit atomically or name the flow the switch
// refused, flow dumps, packet-in/out, meters and table names. It speaks
// the flow model of package of, and nothing of Wyvern's pipeline.
//
// It imports package of and zap.
package ofctl
