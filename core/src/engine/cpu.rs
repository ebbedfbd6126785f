//! The CPU this process runs on, the instruction-set extensions ggml's CPU
//! kernels were compiled for, and the guard between the two.
//!
//! A library built for `armv8.2-a+dotprod` dies with SIGILL on a Cortex-A53.
//! PocketLM ships two Arm builds (see `docs/backends.md`); the Kotlin loader
//! picks one from the CPU's features, and [`CpuInfo::check`] refuses, with a
//! typed error, to start a library whose kernels the CPU cannot execute.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The Arm build variant with ggml's int8 dot-product and fp16 kernels.
pub const ARM_VARIANT_DOTPROD: &str = "armv8.2-a+dotprod+fp16";
/// The Arm build variant every 64-bit Arm CPU runs (NEON only).
pub const ARM_VARIANT_BASELINE: &str = "armv8-a";

/// What the CPU offers and what the compiled kernels need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// The architecture: `aarch64`, `x86_64`, ...
    pub arch: String,
    /// Extensions ggml can use that this CPU reports, e.g. `neon`,
    /// `dotprod`, `fp16`, `i8mm` on Arm; `avx2`, `fma`, `f16c` on x86.
    pub features: Vec<String>,
    /// Extensions the compiled ggml CPU kernels use.
    pub kernels: Vec<String>,
}

impl CpuInfo {
    /// Reads the CPU's features (from the kernel's hwcaps on Arm, CPUID on
    /// x86) and the kernels' compile-time features.
    pub fn detect() -> CpuInfo {
        CpuInfo { arch: std::env::consts::ARCH.to_string(), features: detected_features(), kernels: kernel_features() }
    }

    /// Extensions the kernels use that the CPU lacks. Non-empty means running
    /// them would kill the process with an illegal instruction.
    pub fn missing(&self) -> Vec<String> {
        self.kernels.iter().filter(|k| !self.features.contains(k)).cloned().collect()
    }

    /// Fails with [`Error::UnsupportedCpu`] when the kernels need an extension
    /// the CPU lacks.
    pub fn check(&self) -> Result<()> {
        let missing = self.missing();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::UnsupportedCpu { missing, kernels: self.kernels.join("+") })
    }

    /// The fastest PocketLM Arm build this CPU can run:
    /// [`ARM_VARIANT_DOTPROD`] when it has dot-product and fp16 arithmetic,
    /// [`ARM_VARIANT_BASELINE`] otherwise (and on other architectures).
    pub fn arm_variant(&self) -> &'static str {
        let has = |f: &str| self.features.iter().any(|x| x == f);
        if self.arch == "aarch64" && has("dotprod") && has("fp16") {
            ARM_VARIANT_DOTPROD
        } else {
            ARM_VARIANT_BASELINE
        }
    }
}

#[cfg(target_arch = "aarch64")]
fn detected_features() -> Vec<String> {
    use std::arch::is_aarch64_feature_detected as has;
    present(&[("neon", true), ("dotprod", has!("dotprod")), ("fp16", has!("fp16")), ("i8mm", has!("i8mm")), ("sve", has!("sve"))])
}

#[cfg(target_arch = "x86_64")]
fn detected_features() -> Vec<String> {
    use std::arch::is_x86_feature_detected as has;
    present(&[
        ("sse3", has!("sse3")),
        ("avx", has!("avx")),
        ("avx2", has!("avx2")),
        ("fma", has!("fma")),
        ("f16c", has!("f16c")),
        ("bmi2", has!("bmi2")),
        ("avx512", has!("avx512f")),
    ])
}

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
fn detected_features() -> Vec<String> {
    Vec::new()
}

/// ggml's `ggml_cpu_has_*` report compile-time features of the CPU kernels.
/// They are one-instruction functions, safe to call on any CPU.
fn kernel_features() -> Vec<String> {
    use llama_cpp_sys_2 as sys;
    // SAFETY: pure functions returning a compile-time constant.
    let table: [(&str, i32); 12] = unsafe {
        [
            ("neon", sys::ggml_cpu_has_neon()),
            ("dotprod", sys::ggml_cpu_has_dotprod()),
            ("fp16", sys::ggml_cpu_has_fp16_va()),
            ("i8mm", sys::ggml_cpu_has_matmul_int8()),
            ("sve", sys::ggml_cpu_has_sve()),
            ("sse3", sys::ggml_cpu_has_sse3()),
            ("avx", sys::ggml_cpu_has_avx()),
            ("avx2", sys::ggml_cpu_has_avx2()),
            ("fma", sys::ggml_cpu_has_fma()),
            ("f16c", sys::ggml_cpu_has_f16c()),
            ("bmi2", sys::ggml_cpu_has_bmi2()),
            ("avx512", sys::ggml_cpu_has_avx512()),
        ]
    };
    present(&table.map(|(name, on)| (name, on != 0)))
}

/// The names in `table` whose flag is set, in order.
fn present(table: &[(&str, bool)]) -> Vec<String> {
    table.iter().filter(|(_, on)| *on).map(|(name, _)| name.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(arch: &str, features: &[&str], kernels: &[&str]) -> CpuInfo {
        CpuInfo {
            arch: arch.into(),
            features: features.iter().map(|s| s.to_string()).collect(),
            kernels: kernels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn this_machine_runs_its_own_kernels() {
        let cpu = CpuInfo::detect();
        assert!(!cpu.kernels.is_empty(), "{cpu:?}");
        cpu.check().unwrap();
    }

    #[test]
    fn dotprod_kernels_on_a_cortex_a53_are_refused_with_the_missing_features() {
        let a53 = info("aarch64", &["neon"], &["neon", "dotprod", "fp16"]);
        assert_eq!(a53.missing(), ["dotprod", "fp16"]);
        let err = a53.check().unwrap_err();
        assert!(matches!(err, Error::UnsupportedCpu { .. }));
        assert!(err.to_string().contains("armv8-a"), "{err}");
        assert_eq!(a53.arm_variant(), ARM_VARIANT_BASELINE);
    }

    #[test]
    fn the_fast_variant_needs_both_dotprod_and_fp16() {
        assert_eq!(info("aarch64", &["neon", "dotprod", "fp16"], &[]).arm_variant(), ARM_VARIANT_DOTPROD);
        assert_eq!(info("aarch64", &["neon", "dotprod"], &[]).arm_variant(), ARM_VARIANT_BASELINE);
        assert_eq!(info("x86_64", &["avx2"], &[]).arm_variant(), ARM_VARIANT_BASELINE);
    }
}
