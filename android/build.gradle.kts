// The PocketLM Android library (AAR). Built by scripts/build-android.sh, which
// first puts the native libraries in build/jniLibs and the uniffi-generated
// Kotlin in build/generated/uniffi/kotlin, then runs `assembleRelease publish`:
// build/outputs/aar/pocketlm-android-release.aar (named after rootProject.name)
// and a Maven repository in build/repo (the AAR, its POM and sources).
//
// Gradle wrapper: gradle/wrapper/gradle-wrapper.properties pins the version and
// its SHA-256 (the `wrapper` task below). gradlew, gradlew.bat and
// gradle/wrapper/gradle-wrapper.jar are generated, not written by hand: run
// `gradle wrapper` here with any Gradle 8.9+ (the same as
// `gradle wrapper --gradle-version 8.10.2 --gradle-distribution-sha256-sum <sum>`).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
    id("org.jetbrains.kotlin.plugin.serialization") version "2.1.0"
    `maven-publish`
}

group = "dev.pocketlm"
version = "0.1.0" // the Cargo workspace version

android {
    namespace = "dev.pocketlm"
    compileSdk = 35
    // NDK r27 LTS: AGP strips the .so files with it, and scripts/build-android.sh
    // builds with it when ANDROID_NDK_HOME is not set.
    ndkVersion = "27.3.13750724"

    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
    }

    sourceSets["main"].apply {
        java.srcDirs("src/main/kotlin", "build/generated/uniffi/kotlin")
        jniLibs.srcDirs("build/jniLibs")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        // Keep the .so files page-aligned and uncompressed (16 KB pages, mmap from the APK).
        jniLibs { useLegacyPackaging = false }
    }

    publishing {
        singleVariant("release") { withSourcesJar() }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
        allWarningsAsErrors.set(true)
    }
}

// `api`: Flow, the JSON types and the generated bindings' JNA types are part of
// the public API, so the POM lists them in compile scope (JNA as type aar).
// Versions as in pom.xml, the host-JVM test build.
dependencies {
    api("net.java.dev.jna:jna:5.17.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
    api("org.jetbrains.kotlinx:kotlinx-serialization-json:1.8.0")
}

publishing {
    publications {
        // dev.pocketlm:pocketlm-android:<version> (the project's name, so that a
        // composite build's includeBuild substitutes the same coordinates).
        register<MavenPublication>("release") {
            afterEvaluate { from(components["release"]) }
            pom {
                name.set("PocketLM")
                description.set("On-device LLM inference for Android: a Rust core over llama.cpp")
                licenses {
                    license { name.set("MIT"); url.set("https://opensource.org/licenses/MIT") }
                    license { name.set("Apache-2.0"); url.set("https://www.apache.org/licenses/LICENSE-2.0") }
                }
            }
        }
    }
    repositories {
        maven {
            name = "build"
            url = uri(layout.buildDirectory.dir("repo"))
        }
    }
}

tasks.wrapper {
    gradleVersion = "8.10.2"
    distributionType = Wrapper.DistributionType.BIN
    distributionSha256Sum = "31c55713e40233a8303827ceb42ca48a47267a0ad4bab9177123121e71524c26"
}
