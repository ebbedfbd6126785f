// Plugin versions as in android/build.gradle.kts (the included library build).
plugins {
    id("com.android.application") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.1.0" apply false
    id("org.jetbrains.kotlin.plugin.compose") version "2.1.0" apply false
    id("org.jetbrains.kotlin.plugin.serialization") version "2.1.0" apply false
}

// gradlew and gradle/wrapper/gradle-wrapper.jar are generated: run `gradle wrapper`
// here once (any Gradle 8.9+); it keeps the version and SHA-256 pinned below.
tasks.wrapper {
    gradleVersion = "8.10.2"
    distributionType = Wrapper.DistributionType.BIN
    distributionSha256Sum = "31c55713e40233a8303827ceb42ca48a47267a0ad4bab9177123121e71524c26"
}
