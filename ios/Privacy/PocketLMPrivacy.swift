// Apple only: carries PrivacyInfo.xcprivacy, the privacy manifest for the
// required-reason APIs the Rust core calls (stat/fstat on model and download
// files: FileTimestamp; statfs for free space before a download: DiskSpace).
// A target of its own so that the Linux build, which has no resource bundles,
// never sees it. No API.
