//! Metric names (one place, documented in the README) and the structured decision record.
