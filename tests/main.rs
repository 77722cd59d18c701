//! End-to-end, fault-injection and operations tests: one test binary, a module per topic. The
//! fault-injection tests drive the real gateway (configured from a settings file) against real
//! helpers: socat pty pairs for serial ports, Mosquitto, InfluxDB 1.x, PostgreSQL and MariaDB
//! behind a cuttable proxy, FIFOs, TCP bridges.

mod broker_restart;
mod garbage;
mod influx_outage;
mod ops;
mod replay;
mod serial_unplug;
mod slow_sink;
mod sql_outage;
