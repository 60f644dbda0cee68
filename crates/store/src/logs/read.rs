//! Reading events back: GetLogEvents (one stream, paged both ways with `f/` and `b/` tokens) and
//! FilterLogEvents (a whole group, in time order, optionally matching a pattern).

use nimbus_model::limits::{LOGS_EVENT_OVERHEAD_BYTES, LOGS_RESPONSE_BYTES_MAX};
use rusqlite::{OptionalExtension as _, Row, ToSql, Transaction, params};

use super::pattern::Pattern;
use super::{StoredLogEvent, prefix_upper_bound, require_group};
use crate::db::Store;
use crate::error::{Result, StoreError};
use crate::functions::limit_param;

/// The most rows one FilterLogEvents call examines, and the most message bytes. Like AWS ("if the
/// results ... take a while, a page may be returned empty with a nextToken"), a page whose pattern
/// matches rarely may come back short, even empty, with a token to go on; that bounds the time one call
/// can take, whatever the pattern (it is one pass per message, see `pattern.rs`) and the event sizes
/// (an event is up to 256 KB, so 10,000 of them would be 2.5 GB).
pub(super) const FILTER_SCAN_MAX: usize = 10_000;
pub(super) const FILTER_SCAN_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What an event adds to a response page, as CloudWatch counts it against the 1 MB page.
fn page_cost(message: &str) -> usize {
    message.len() + LOGS_EVENT_OVERHEAD_BYTES
}

/// A point in a stream's (timestamp, id) order, which is the order events are returned in. A token
/// names such a point as one number (timestamp in the high 64 bits, id in the low ones, each with its
/// sign bit flipped so that numeric order is tuple order), which also makes it look like AWS's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    timestamp_ms: i64,
    id: i64,
}

const SIGN: u64 = 1 << 63;

impl Position {
    /// The point just before every event at `timestamp_ms` (ids are positive).
    fn start_of(timestamp_ms: i64) -> Position {
        Position { timestamp_ms, id: i64::MIN }
    }

    fn of(event: &StoredLogEvent) -> Position {
        Position { timestamp_ms: event.timestamp_ms, id: event.id }
    }

    fn encode(self) -> u128 {
        (u128::from(self.timestamp_ms.cast_unsigned() ^ SIGN) << 64) | u128::from(self.id.cast_unsigned() ^ SIGN)
    }

    fn decode(n: u128) -> Position {
        // Truncation to the two 64-bit halves is the point.
        let (high, low) = ((n >> 64) as u64, n as u64);
        Position { timestamp_ms: (high ^ SIGN).cast_signed(), id: (low ^ SIGN).cast_signed() }
    }

    fn next(self) -> Position {
        Position::decode(self.encode().saturating_add(1))
    }

    fn prev(self) -> Position {
        Position::decode(self.encode().saturating_sub(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Backward,
}

fn parse_get_token(token: &str) -> Result<(Direction, Position)> {
    let invalid = || StoreError::InvalidToken { token: token.to_owned() };
    let (direction, number) = match token.split_once('/') {
        Some(("f", n)) => (Direction::Forward, n),
        Some(("b", n)) => (Direction::Backward, n),
        _ => return Err(invalid()),
    };
    let n: u128 = number.parse().map_err(|_| invalid())?;
    Ok((direction, Position::decode(n)))
}

fn event_from_row(stream: &str, row: &Row<'_>) -> rusqlite::Result<StoredLogEvent> {
    Ok(StoredLogEvent {
        id: row.get(0)?,
        stream: stream.to_owned(),
        timestamp_ms: row.get(1)?,
        ingestion_ms: row.get(2)?,
        message: row.get(3)?,
    })
}

fn stream_id(tx: &Transaction<'_>, group: &str, stream: &str) -> Result<i64> {
    let id = tx
        .prepare_cached(
            "SELECT s.id FROM log_streams s JOIN log_groups g ON g.id = s.group_id WHERE g.name = ?1 AND s.name = ?2",
        )
        .and_then(|mut stmt| stmt.query_row([group, stream], |row| row.get(0)).optional())
        .map_err(StoreError::sqlite("find log stream"))?;
    match id {
        Some(id) => Ok(id),
        None => {
            // Say which of the two is missing, as AWS's messages do.
            require_group(tx, group)?;
            Err(StoreError::NotFound { what: "log stream", name: stream.to_owned() })
        }
    }
}

/// Events read in page order until the next one would take the page past 1 MB (every page holds at
/// least one event: an event is at most 256 KB). Rows are read one at a time, so no more than a page
/// is ever held.
fn page_of(rows: impl Iterator<Item = rusqlite::Result<StoredLogEvent>>) -> rusqlite::Result<Vec<StoredLogEvent>> {
    let mut events = Vec::new();
    let mut bytes = 0;
    for event in rows {
        let event = event?;
        bytes += page_cost(&event.message);
        if bytes > LOGS_RESPONSE_BYTES_MAX && !events.is_empty() {
            break;
        }
        events.push(event);
    }
    Ok(events)
}

impl Store {
    /// One page of GetLogEvents: events of one stream with `start_ms <= timestamp < end_ms`, in
    /// (timestamp, id) order, plus the next forward and backward tokens.
    ///
    /// Without a token the page is the earliest `limit` events if `start_from_head`, else the latest. A
    /// forward token (`f/…`) continues after the page that returned it and a backward token (`b/…`)
    /// before it. When nothing newer exists, the forward token returned is the one passed in, which is
    /// how `aws logs get-log-events` knows it has reached the end. A page holds at most `limit` events
    /// and 1 MB (AWS's bound); the tokens continue from its first and last event, so nothing is skipped.
    #[allow(clippy::too_many_arguments)]
    pub fn get_log_events(
        &self,
        group: &str,
        stream: &str,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        start_from_head: bool,
        token: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<StoredLogEvent>, String, String)> {
        let lo = Position::start_of(start_ms.unwrap_or(i64::MIN));
        let hi = Position::start_of(end_ms.unwrap_or(i64::MAX));
        let (direction, from) = match token.map(parse_get_token).transpose()? {
            Some(parsed) => parsed,
            None if start_from_head => (Direction::Forward, lo),
            None => (Direction::Backward, hi),
        };
        self.logs.read(|tx| {
            let stream_id = stream_id(tx, group, stream)?;
            let limit = limit_param(limit);
            let events = match direction {
                Direction::Forward => {
                    let after = from.max(lo);
                    tx.prepare_cached(
                        "SELECT id, timestamp_ms, ingestion_ms, message FROM log_events
                         WHERE stream_id = ?1 AND timestamp_ms >= ?2 AND (timestamp_ms > ?2 OR id > ?3)
                             AND timestamp_ms < ?4
                         ORDER BY timestamp_ms, id LIMIT ?5",
                    )
                    .and_then(|mut stmt| {
                        page_of(stmt.query_map(
                            params![stream_id, after.timestamp_ms, after.id, hi.timestamp_ms, limit],
                            |row| event_from_row(stream, row),
                        )?)
                    })
                }
                Direction::Backward => {
                    let before = from.min(hi);
                    tx.prepare_cached(
                        "SELECT id, timestamp_ms, ingestion_ms, message FROM log_events
                         WHERE stream_id = ?1 AND timestamp_ms <= ?2 AND (timestamp_ms < ?2 OR id < ?3)
                             AND timestamp_ms >= ?4
                         ORDER BY timestamp_ms DESC, id DESC LIMIT ?5",
                    )
                    .and_then(|mut stmt| {
                        page_of(stmt.query_map(
                            params![stream_id, before.timestamp_ms, before.id, lo.timestamp_ms, limit],
                            |row| event_from_row(stream, row),
                        )?)
                    })
                    .map(|mut events| {
                        events.reverse();
                        events
                    })
                }
            }
            .map_err(StoreError::sqlite("read log events"))?;
            let forward = |p: Position| format!("f/{}", p.encode());
            let backward = |p: Position| format!("b/{}", p.encode());
            let tokens = match (events.first(), events.last(), token) {
                (Some(first), Some(last), _) => (forward(Position::of(last)), backward(Position::of(first))),
                // An empty page keeps the token it was asked with, and the other one points just past
                // it, so paging the other way starts with the events next to it.
                (_, _, Some(token)) if direction == Direction::Forward => (token.to_owned(), backward(from.next())),
                (_, _, Some(token)) => (forward(from.prev()), token.to_owned()),
                // Nothing in range yet: forward from the start of the range sees whatever arrives.
                (_, _, None) => (forward(lo), backward(hi)),
            };
            Ok((events, tokens.0, tokens.1))
        })
    }

    /// One page of FilterLogEvents over a group: events with `start_ms <= timestamp <= end_ms` (both ends
    /// inclusive, as AWS documents for this call), from the named streams or those whose name starts with
    /// `stream_prefix`, matching `pattern`, in (timestamp, id) order; and a token if there may be more.
    ///
    /// Patterns: terms separated by spaces must all appear (case-sensitive), `"quoted phrases"` match as
    /// a whole, `-term` must not appear, and a pattern made only of `?term`s matches any of them. JSON
    /// (`{ ... }`) and space-delimited (`[ ... ]`) patterns are `InvalidPattern`.
    #[allow(clippy::too_many_arguments)]
    pub fn filter_log_events(
        &self,
        group: &str,
        streams: Option<&[String]>,
        stream_prefix: Option<&str>,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        pattern: Option<&str>,
        token: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<StoredLogEvent>, Option<String>)> {
        let pattern = Pattern::parse(pattern.unwrap_or(""))?;
        if limit == 0 {
            return Ok((Vec::new(), token.map(str::to_owned)));
        }
        let start = Position::start_of(start_ms.unwrap_or(i64::MIN));
        let end_ms = end_ms.unwrap_or(i64::MAX);
        let after = match token {
            Some(t) => t
                .parse::<u128>()
                .map(Position::decode)
                .map_err(|_| StoreError::InvalidToken { token: t.to_owned() })?
                .max(start),
            None => start,
        };
        let stream_list = streams.map(serde_json::to_string).transpose().map_err(|e| StoreError::Sqlite {
            op: "encode stream names",
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        let upper = stream_prefix.and_then(prefix_upper_bound);

        let mut sql = String::from(
            "SELECT e.id, e.timestamp_ms, e.ingestion_ms, e.message, s.name
             FROM log_events e JOIN log_streams s ON s.id = e.stream_id
             WHERE e.group_id = :group AND e.timestamp_ms >= :ts AND (e.timestamp_ms > :ts OR e.id > :id)
                 AND e.timestamp_ms <= :end",
        );
        if stream_list.is_some() {
            sql.push_str(" AND s.name IN (SELECT value FROM json_each(:streams))");
        }
        if stream_prefix.is_some() {
            sql.push_str(" AND s.name >= :prefix");
        }
        if upper.is_some() {
            sql.push_str(" AND s.name < :upper");
        }
        sql.push_str(" ORDER BY e.timestamp_ms, e.id LIMIT :scan");

        self.logs.read(|tx| {
            let group_id = require_group(tx, group)?;
            // One row past the budget tells whether a token is needed.
            let scan_max = limit_param(FILTER_SCAN_MAX + 1);
            let mut bound: Vec<(&str, &dyn ToSql)> = vec![
                (":group", &group_id),
                (":ts", &after.timestamp_ms),
                (":id", &after.id),
                (":end", &end_ms),
                (":scan", &scan_max),
            ];
            if let Some(list) = &stream_list {
                bound.push((":streams", list));
            }
            if let Some(prefix) = &stream_prefix {
                bound.push((":prefix", prefix));
            }
            if let Some(upper) = &upper {
                bound.push((":upper", upper));
            }
            let mut stmt = tx.prepare_cached(&sql).map_err(StoreError::sqlite("prepare filter log events"))?;
            let mut rows = stmt.query(bound.as_slice()).map_err(StoreError::sqlite("filter log events"))?;
            let mut events = Vec::new();
            let (mut scanned, mut scanned_bytes, mut page_bytes) = (0, 0, 0);
            let mut last = None;
            let mut more = false;
            while let Some(row) = rows.next().map_err(StoreError::sqlite("filter log events"))? {
                // The scan budget: spent, and there is another row, so the next page goes on from here.
                if scanned >= FILTER_SCAN_MAX || scanned_bytes >= FILTER_SCAN_BYTES_MAX {
                    more = true;
                    break;
                }
                let event = row
                    .get::<_, String>(4)
                    .and_then(|stream| event_from_row(&stream, row))
                    .map_err(StoreError::sqlite("read filtered event"))?;
                if pattern.matches(&event.message) {
                    page_bytes += page_cost(&event.message);
                    if page_bytes > LOGS_RESPONSE_BYTES_MAX && !events.is_empty() {
                        // The page is full: this event starts the next one.
                        more = true;
                        break;
                    }
                    scanned += 1;
                    scanned_bytes += event.message.len();
                    last = Some(Position::of(&event));
                    events.push(event);
                    if events.len() >= limit {
                        more = true;
                        break;
                    }
                } else {
                    scanned += 1;
                    scanned_bytes += event.message.len();
                    last = Some(Position::of(&event));
                }
            }
            let next = if more { last.map(|p| p.encode().to_string()) } else { None };
            Ok((events, next))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_encode_in_tuple_order() {
        let points = [
            Position { timestamp_ms: i64::MIN, id: i64::MIN },
            Position { timestamp_ms: -5, id: 3 },
            Position { timestamp_ms: 0, id: i64::MIN },
            Position { timestamp_ms: 0, id: 1 },
            Position { timestamp_ms: 1_700_000_000_000, id: 7 },
            Position { timestamp_ms: 1_700_000_000_000, id: i64::MAX },
            Position { timestamp_ms: 1_700_000_000_001, id: i64::MIN },
        ];
        for pair in points.windows(2) {
            assert!(pair[0].encode() < pair[1].encode(), "{pair:?}");
        }
        for p in points {
            assert_eq!(Position::decode(p.encode()), p);
        }
        let carry = Position { timestamp_ms: 4, id: i64::MAX }.next();
        assert_eq!(carry, Position::start_of(5));
        assert_eq!(carry.prev(), Position { timestamp_ms: 4, id: i64::MAX });
    }

    #[test]
    fn get_tokens_parse() {
        assert_eq!(parse_get_token("f/12").unwrap().0, Direction::Forward);
        assert_eq!(parse_get_token("b/12").unwrap().0, Direction::Backward);
        for bad in ["", "f/", "x/1", "f/-1", "f/1/s", "12"] {
            assert!(matches!(parse_get_token(bad), Err(StoreError::InvalidToken { .. })), "{bad}");
        }
    }
}
