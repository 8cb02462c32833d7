# frozen_string_literal: true

# Fault switches of the control API. `fail_next_subscribes(count, at:)` makes the next `count` calls of
# RoomChannel#subscribed raise, as a database or Redis hiccup would:
#   at: "lookup"   (default) in the user lookup, before any stream_from: a PostgreSQL hiccup (or a membership not
#                  there yet); the failed subscription streams nothing;
#   at: "presence" in OnlineStatusTracker.update_presence, after the streams were set up: a Redis hiccup; Rails
#                  then streams broadcasts to the failed (never confirmed) subscription anyway.
module CableTestkit
  # What the pg gem raises when the database connection drops.
  class DatabaseHiccup < StandardError; end
  # What redis-rb raises when Redis is unreachable.
  class RedisHiccup < StandardError; end

  module Faults
    PLACES = %w[lookup presence].freeze

    @mutex = Mutex.new
    @pending = [] # one entry per subscribe still to fail: the place where it fails
    @stats = Hash.new(0)

    class << self
      def fail_next_subscribes(count, at: 'lookup')
        raise ArgumentError, "count must be an integer >= 0, got #{count.inspect}" unless count.is_a?(Integer) && count >= 0
        raise ArgumentError, "at must be one of #{PLACES.join(', ')}, got #{at.inspect}" unless PLACES.include?(at)

        @mutex.synchronize { @pending.concat([at] * count) }
      end

      # Called once at the start of every RoomChannel#subscribed: takes the next planned failure, if any.
      def begin_subscribe
        @mutex.synchronize do
          @stats['subscribed'] += 1
          Thread.current[:cable_testkit_fault] = @pending.shift
        end
      end

      def database!(what)
        hiccup!('lookup', DatabaseHiccup, "PG::ConnectionBad in #{what}: server closed the connection unexpectedly")
      end

      def redis!(what)
        hiccup!('presence', RedisHiccup, "Redis::CannotConnectError in #{what}: Connection refused")
      end

      def count(event)
        @mutex.synchronize { @stats[event] += 1 }
      end

      def stats
        @mutex.synchronize { @stats.merge('pending_failures' => @pending.size) }
      end

      def reset
        @mutex.synchronize do
          @pending.clear
          @stats.clear
        end
      end

      private

      def hiccup!(place, error, message)
        return unless Thread.current[:cable_testkit_fault] == place

        Thread.current[:cable_testkit_fault] = nil
        count('raised')
        raise error, message
      end
    end
  end
end
