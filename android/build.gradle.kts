// The PocketLM Android library (AAR). Built by scripts/build-android.sh, which
// first puts the native libraries in build/jniLibs and the uniffi-generated
// Kotlin in build/generated/uniffi/kotlin.
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
    id("org.jetbrains.kotlin.plugin.serialization") version "2.1.0"
}

android {
    namespace = "dev.pocketlm"
    compileSdk = 35

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
    kotlinOptions {
        jvmTarget = "17"
        allWarningsAsErrors = true
    }

    packaging {
        // Keep the .so files page-aligned and uncompressed (16 KB pages, mmap from the APK).
        jniLibs { useLegacyPackaging = false }
    }
}

dependencies {
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    api("org.jetbrains.kotlinx:kotlinx-serialization-json:1.8.0")
}
