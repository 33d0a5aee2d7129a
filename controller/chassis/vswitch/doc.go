// Package vswitch holds libovsdb models of Open vSwitch's database
// (Open_vSwitch, Bridge, Port, Interface, Controller, ...), generated from
// the schema of the OVS that Debian ships.
//
// It imports libovsdb alone; only controller/chassis imports it.
package vswitch

//go:generate go run github.com/ovn-kubernetes/libovsdb/cmd/modelgen -p vswitch -o . /usr/share/openvswitch/vswitch.ovsschema
