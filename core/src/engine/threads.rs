//! Choosing a sensible default thread count.
//!
//! Decoding is memory-bound and stalls when a thread lands on an efficiency
//! core, so the default is the number of performance cores, not of all cores.

/// The default number of inference threads for this device: its performance
/// cores (at most 8), or all available cores when they cannot be told apart.
pub fn default_threads() -> u32 {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    performance_cores().unwrap_or(all).clamp(1, 8).min(all.max(1))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn performance_cores() -> Option<u32> {
    // Cores of a big.LITTLE SoC report different maximum frequencies; the
    // slowest cluster is the efficiency cluster. Homogeneous CPUs (or ones that
    // expose no cpufreq, like most VMs) use every core.
    let mut freqs = Vec::new();
    for entry in std::fs::read_dir("/sys/devices/system/cpu").ok()? {
        let name = entry.ok()?.file_name();
        let name = name.to_string_lossy();
        if name.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            let path = format!("/sys/devices/system/cpu/{name}/cpufreq/cpuinfo_max_freq");
            if let Some(khz) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok()) {
                freqs.push(khz);
            }
        }
    }
    let slowest = *freqs.iter().min()?;
    let fastest = *freqs.iter().max()?;
    if slowest == fastest {
        return None;
    }
    Some(freqs.iter().filter(|&&f| f > slowest).count() as u32)
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn performance_cores() -> Option<u32> {
    let mut value: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>();
    // SAFETY: the name is NUL-terminated and `value`/`size` describe a c_int.
    let rc = unsafe {
        libc::sysctlbyname(
            c"hw.perflevel0.physicalcpu".as_ptr(),
            (&mut value as *mut libc::c_int).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0 && value > 0).then_some(value as u32)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios")))]
fn performance_cores() -> Option<u32> {
    None
}
