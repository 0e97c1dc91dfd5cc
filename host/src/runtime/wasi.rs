//! The WASI preview1 subset Envoy (cpp-host) provides (§1 "WASI imports"); no wasmtime-wasi.

use wasmtime::{Caller, Linker};

use super::abi::{read_bytes, write_bytes, write_u32, write_u64};
use super::vm::VmState;

type Ctx<'a> = Caller<'a, VmState>;
type Errno = wasmtime::Result<i32>;

const MODULE: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_NOSYS: i32 = 52;
/// cpp-host's limit for random_get.
const MAX_RANDOM_BYTES: u32 = 64 * 1024;

/// Names of every WASI import this host provides.
pub(crate) const WASI_IMPORTS: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "proc_exit",
    "poll_oneoff",
    "sched_yield",
];

fn fault(ok: bool) -> Errno {
    Ok(if ok { ERRNO_SUCCESS } else { ERRNO_FAULT })
}

/// `KEY=VALUE\0` entries from the configured environment.
fn environ_entries(state: &VmState) -> Vec<Vec<u8>> {
    state
        .shared
        .options
        .environment
        .iter()
        .map(|(key, value)| {
            let mut entry = format!("{key}={value}").into_bytes();
            entry.push(0);
            entry
        })
        .collect()
}

/// Registers the WASI subset on the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Ctx<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| -> Errno {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let mut text = Vec::new();
            for index in 0..iovs_len.max(0) {
                let Some(iov) = read_bytes(&mut c, iovs.wrapping_add(index * 8), 8) else {
                    return Ok(ERRNO_FAULT);
                };
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let Some(bytes) = read_bytes(&mut c, ptr, len) else {
                    return Ok(ERRNO_FAULT);
                };
                text.extend_from_slice(&bytes);
            }
            let written = text.len() as u32;
            let mut message = String::from_utf8_lossy(&text).into_owned();
            if message.ends_with('\n') {
                message.pop();
            }
            c.data_mut()
                .log(if fd == 1 { "info" } else { "error" }, message);
            fault(write_u32(&mut c, nwritten, written))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32| -> Errno { Ok(ERRNO_BADF) },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_: Ctx<'_>, _: i32, _: i64, _: i32, _: i32| -> Errno { Ok(ERRNO_BADF) },
    )?;
    linker.func_wrap(MODULE, "fd_close", |_: Ctx<'_>, _: i32| -> Errno {
        Ok(ERRNO_BADF)
    })?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |_: Ctx<'_>, _: i32, _: i32| -> Errno { Ok(ERRNO_BADF) },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |_: Ctx<'_>, _: i32, _: i32| -> Errno { Ok(ERRNO_BADF) },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_: Ctx<'_>, _: i32, _: i32, _: i32| -> Errno { Ok(ERRNO_BADF) },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut c: Ctx<'_>, count_ptr: i32, size_ptr: i32| -> Errno {
            let entries = environ_entries(c.data());
            let size: usize = entries.iter().map(Vec::len).sum();
            fault(
                write_u32(&mut c, count_ptr, entries.len() as u32)
                    && write_u32(&mut c, size_ptr, size as u32),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_get",
        |mut c: Ctx<'_>, ptrs: i32, buf: i32| -> Errno {
            let entries = environ_entries(c.data());
            let mut at = buf;
            for (index, entry) in entries.iter().enumerate() {
                if !write_u32(&mut c, ptrs.wrapping_add(index as i32 * 4), at as u32)
                    || !write_bytes(&mut c, at, entry)
                {
                    return Ok(ERRNO_FAULT);
                }
                at = at.wrapping_add(entry.len() as i32);
            }
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut c: Ctx<'_>, count: i32, size: i32| -> Errno {
            fault(write_u32(&mut c, count, 0) && write_u32(&mut c, size, 0))
        },
    )?;
    linker.func_wrap(MODULE, "args_get", |_: Ctx<'_>, _: i32, _: i32| -> Errno {
        Ok(ERRNO_SUCCESS)
    })?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Ctx<'_>, id: i32, _precision: i64, ret: i32| -> Errno {
            let clock = &c.data().shared.clock;
            let now = match id {
                0 => clock.now_unix_ns(),
                1 => clock.monotonic_ns(),
                _ => return Ok(ERRNO_INVAL),
            };
            fault(write_u64(&mut c, ret, now))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Ctx<'_>, id: i32, ret: i32| -> Errno {
            if !(0..=1).contains(&id) {
                return Ok(ERRNO_INVAL);
            }
            fault(write_u64(&mut c, ret, 1))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Ctx<'_>, buf: i32, len: i32| -> Errno {
            let len = len as u32;
            if len > MAX_RANDOM_BYTES {
                return Ok(ERRNO_INVAL);
            }
            let mut bytes = Vec::with_capacity(len as usize + 8);
            while bytes.len() < len as usize {
                let word = c.data_mut().next_random();
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.truncate(len as usize);
            fault(write_bytes(&mut c, buf, &bytes))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |mut c: Ctx<'_>, code: i32| -> wasmtime::Result<()> {
            c.data_mut()
                .log("error", format!("wasi proc_exit({code}) called"));
            Err(wasmtime::Error::msg(format!("proc_exit({code})")))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: Ctx<'_>, _in: i32, _out: i32, _subscriptions: i32, nevents: i32| -> Errno {
            let _ = write_u32(&mut c, nevents, 0);
            Ok(ERRNO_NOSYS)
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", |_: Ctx<'_>| -> Errno {
        Ok(ERRNO_SUCCESS)
    })?;
    Ok(())
}
