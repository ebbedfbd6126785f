//! The process's peak memory, as the operating system reports it.

/// The process's peak resident set size in bytes (0 if the platform hides it).
pub fn peak_rss_bytes() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                return kb * 1024;
            }
        }
    }
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the zeroed struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let max = usage.ru_maxrss.max(0) as u64;
            // Linux reports kilobytes; Apple platforms report bytes.
            return if cfg!(any(target_os = "macos", target_os = "ios")) { max } else { max * 1024 };
        }
    }
    0
}
