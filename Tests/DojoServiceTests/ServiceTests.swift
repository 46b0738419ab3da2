import Testing
import DojoService
