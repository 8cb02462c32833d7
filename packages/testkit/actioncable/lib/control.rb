# frozen_string_literal: true

require 'json'
require 'rack'

# The test control API, served by the same puma as /cable (JSON in, JSON out):
#
#   GET  /control/health                       {"ok":true} once the app is loaded
#   POST /control/users                        {id, pubsub_token, accounts:[{id, role?, availability?, auto_offline?}]}
#                                              inserts or replaces a user (a new token is a rotation)
#   DELETE /control/users/:id
#   POST /control/broadcast                    {token, message} (or {stream, message}):
#                                              ActionCable.server.broadcast(token, message), as Chatwoot's
#                                              ActionCableBroadcastJob does
#   POST /control/fail-subscribe               {count, at?}: the next `count` RoomChannel#subscribed raise
#                                              (at: "lookup" | "presence", see lib/faults.rb)
#   POST /control/restart                      ActionCable.server.restart: every socket gets
#                                              {"type":"disconnect","reason":"server_restart","reconnect":true}
#   GET  /control/connections                  [{identifiers:[...]}] per open connection: the subscriptions
#                                              Rails holds, failed ones included
#   (ActionCable.server.restart leaves the connections it closed in Rails' own list: a Rails quirk, kept.)
#   GET  /control/stats                        counters: subscribed (calls), subscribed_ok, raised, unsubscribed
#   POST /control/reset                        forgets users, presence, faults and counters
module CableTestkit
  class Control
    def call(env)
      request = Rack::Request.new(env)
      route(request.request_method, request.path_info.sub(%r{\A/control}, ''), request)
    rescue ArgumentError, KeyError, TypeError, JSON::ParserError => e
      reply(400, { error: "#{e.class}: #{e.message}" })
    end

    private

    def route(method, path, request)
      case [method, path]
      when %w[GET /health] then reply(200, { ok: true, actioncable: ActionCable.version.to_s, puma: Puma::Const::PUMA_VERSION })
      when %w[POST /users]
        body = json(request)
        user = Records.upsert_user(id: body.fetch('id'), pubsub_token: body.fetch('pubsub_token'),
                                   accounts: Array(body.fetch('accounts', [])))
        reply(200, { id: user.id, accounts: user.memberships.keys })
      when %w[POST /broadcast]
        body = json(request)
        stream = body['stream'] || body.fetch('token')
        ActionCable.server.broadcast(String(stream), body.fetch('message'))
        reply(200, { ok: true })
      when %w[POST /fail-subscribe]
        body = json(request)
        Faults.fail_next_subscribes(body.fetch('count'), at: body.fetch('at', 'lookup'))
        reply(200, Faults.stats)
      when %w[POST /restart]
        ActionCable.server.restart
        reply(200, { ok: true })
      when %w[GET /connections]
        # Only open sockets: after ActionCable.server.restart, Rails keeps the closed connections in its list
        # (their close handling was queued on the worker pool that restart halts).
        open = ActionCable.server.connections.select { |connection| connection.send(:websocket).alive? }
        reply(200, open.map { |connection| { identifiers: connection.subscriptions.identifiers } })
      when %w[GET /stats] then reply(200, Faults.stats)
      when %w[POST /reset]
        Records.users.each { |user| Records.delete_user(user.id) }
        OnlineStatusTracker.reset
        Faults.reset
        reply(200, { ok: true })
      else
        if method == 'DELETE' && (id = path[%r{\A/users/(\d+)\z}, 1])
          reply(Records.delete_user(id) ? 200 : 404, { ok: true })
        else
          reply(404, { error: "no control route #{method} #{path}" })
        end
      end
    end

    def json(request)
      body = JSON.parse(request.body.read.then { |text| text.empty? ? '{}' : text })
      raise TypeError, 'the body must be a JSON object' unless body.is_a?(Hash)

      body
    end

    def reply(status, body)
      [status, { 'Content-Type' => 'application/json' }, [JSON.generate(body)]]
    end
  end
end
